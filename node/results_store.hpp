// The node's own results: one LMDB environment in <data_dir>/db, schema version 1.
//
// Table "results": key (started unix ms, test id) so that a scan runs in time order; value a
// test_record (msgpack).
//
// Writes go through a group-commit writer thread (storage/group_commit.hpp): put() queues a
// record and returns at once, so an event loop never waits for the disk's fsync. A record is
// durable once its completion says ok (put()'s `done`, async_put()'s handler); that, and not
// put()'s return, is the moment to tell anyone it is stored. put_durable() waits for it, for
// callers that are not on an event loop. close() (and the destructor) commits everything
// queued before it returns.
//
// Errors: storage errors as result values (errc::io_error, errc::corrupt,
// errc::unsupported_version for a database written by a newer glasnode); a full writer queue
// is errc::busy, a closed store errc::closed.
// Thread-safety: every member may be called from any thread. One results_store per process
// and directory (LMDB allows one environment per process per directory); several processes
// may use the same directory. Not copyable or movable (the writer thread refers to it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <msgpack.hpp>

#include "node/asio.hpp"
#include "storage/env.hpp"
#include "storage/group_commit.hpp"
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
    std::string role;         // "agent": we ran it; "provider": we served it
    std::string peer_id;      // the other node's id (hex)
    std::string peer_address; // "HOST:PORT" as dialled or seen (kept locally, never shared)
    std::vector<stored_verdict> verdicts;
    std::string report_json; // the whole report as `glasnode test --json` printed it
    MSGPACK_DEFINE(format, test_id, started_unix_ms, duration_s, role, peer_id, peer_address,
                   verdicts, report_json)
};

class results_store {
public:
    // Called once with the outcome of a put(): ok means the record is committed (durable).
    using completion = std::function<void(const status&)>;

    static result<std::unique_ptr<results_store>> open(const std::filesystem::path& data_dir,
                                                       std::uint64_t map_size);
    results_store(const results_store&) = delete;
    results_store& operator=(const results_store&) = delete;
    // close().
    ~results_store();

    // Queues `r` for the next group commit and returns without waiting for the disk.
    // An error (errc::busy: writer queue full; errc::closed) means `r` was not taken and `done`
    // will not be called. Otherwise `done` is called once, on the writer thread, after the
    // commit: keep it short, never let it throw, and post to your own executor to touch your
    // state. Without `done`, a failed commit is logged, so that no outcome goes unreported.
    status put(test_record r, completion done = {});

    // put() and wait for the commit: ok means durable. Blocks, so not for an event loop.
    status put_durable(test_record r);

    // put() for event-loop code: `handler(status)` runs through the handler's associated
    // executor (`ex` when it has none) once `r` is committed or has failed, or right away with
    // put()'s error. That executor counts as busy until then, so an io_context does not run
    // out of work while its writes are pending: `co_await store.async_put(ex, r,
    // asio::use_awaitable)` returns once the record is durable. The executor's context must
    // outlive the delivery (close the store before destroying the io_context).
    template <class Token>
    auto async_put(asio::any_io_executor ex, test_record r, Token&& token);

    // Waits until every put() made before the call has been committed or has failed.
    // Blocks; never call it from a completion.
    status flush();

    // Refuses further puts, commits everything already queued and stops the writer thread.
    // Idempotent; blocks; never call it from a completion.
    void close();

    // Newest first, at most `limit` records (0: all).
    result<std::vector<test_record>> list(std::size_t limit) const;
    // The record whose test id starts with `prefix` (errc::not_found; errc::invalid_argument if
    // several match).
    result<test_record> find(const std::string& prefix) const;

private:
    struct tables;
    results_store(std::unique_ptr<storage::environment> env, std::unique_ptr<tables> t);

    std::unique_ptr<storage::environment> m_env;
    std::unique_ptr<tables> m_tables;
    std::unique_ptr<storage::group_commit> m_writer; // last: stops before the rest goes
};

template <class Token>
auto results_store::async_put(asio::any_io_executor io_ex, test_record r, Token&& token) {
    return asio::async_initiate<Token, void(status)>(
        [this, io_ex](auto handler, test_record record) {
            using handler_t = decltype(handler);
            auto ex = asio::get_associated_executor(handler, io_ex);
            using work_t = decltype(asio::make_work_guard(ex));
            // The handler and the executor's work in one slot, shared by the copies that
            // std::function makes of the completion and emptied on delivery (on the handler's
            // executor): nothing of the handler stays behind on the writer thread.
            struct slot_t {
                std::optional<handler_t> handler;
                std::optional<work_t> work;
            };
            auto slot = std::make_shared<slot_t>();
            slot->handler.emplace(std::move(handler));
            slot->work.emplace(asio::make_work_guard(ex));
            auto deliver = [ex, slot](const status& outcome) {
                asio::post(ex, [slot, outcome]() mutable {
                    handler_t h = std::move(*slot->handler);
                    slot->handler.reset();
                    slot->work.reset();
                    std::move(h)(outcome);
                });
            };
            if (auto queued = put(std::move(record), deliver); !queued)
                deliver(queued);
        },
        token, std::move(r));
}

} // namespace glasnode::node
