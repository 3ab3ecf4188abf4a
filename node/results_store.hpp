// The node's own results: one LMDB environment in <data_dir>/db, schema version 1.
//
// Table "results": key (started unix ms, test id) so that a scan runs in time order; value a
// test_record (msgpack). Records are written in their own transaction and are durable when
// put() returns (the node reports a test as stored only after that).
//
// Errors: storage errors as result values (errc::io_error, errc::corrupt,
// errc::unsupported_version for a database written by a newer glasnode).
// Thread-safety: one results_store per process (LMDB allows one environment per process per
// directory); several processes may use the same directory. Not copyable or movable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "storage/env.hpp"
#include "storage/result.hpp"

namespace glasnode::node {

struct stored_verdict {
    std::string direction; // "upload" | "download"
    std::string port;      // "bt" | "neutral"
    std::string verdict;   // "none" | "throttled" | "blocked" | "reset-injected" | "inconclusive"
    std::string basis;     // "none" | "content" | "port"
    double bt_mbps = 0;
    double control_mbps = 0;
    double ks_p = 1;
    double area = 0;
    MSGPACK_DEFINE(direction, port, verdict, basis, bt_mbps, control_mbps, ks_p, area)
};

struct test_record {
    std::uint32_t format = 1;
    std::string test_id; // hex
    std::uint64_t started_unix_ms = 0;
    double duration_s = 0;
    std::string role;          // "agent": we ran it; "provider": we served it
    std::string peer_id;       // the other node's id (hex)
    std::string peer_address;  // "HOST:PORT" as dialled or seen (kept locally, never shared)
    std::vector<stored_verdict> verdicts;
    std::string report_json;   // the whole report as `glasnode test --json` printed it
    MSGPACK_DEFINE(format, test_id, started_unix_ms, duration_s, role, peer_id, peer_address,
                   verdicts, report_json)
};

class results_store {
public:
    static result<std::unique_ptr<results_store>> open(const std::filesystem::path& data_dir,
                                                       std::uint64_t map_size);
    results_store(const results_store&) = delete;
    results_store& operator=(const results_store&) = delete;
    ~results_store();

    // Durable when it returns ok.
    status put(const test_record& r);
    // Newest first, at most `limit` records (0: all).
    result<std::vector<test_record>> list(std::size_t limit) const;
    // The record whose test id starts with `prefix` (errc::not_found; errc::invalid_argument if
    // several match).
    result<test_record> find(const std::string& prefix) const;

private:
    explicit results_store(std::unique_ptr<storage::environment> env);
    std::unique_ptr<storage::environment> m_env;
};

} // namespace glasnode::node
