// The differential test's flow engine: one BitTorrent peer-wire flow (or its bit-inverted
// control twin) over a real TCP connection, at line rate, measured at the receiver.
//
// The agent always connects (run_agent_flow) and the provider always accepts
// (test_port_listener). Either side can seed or leech: the seeder answers requests with 16 KiB
// blocks of incompressible data, the leecher keeps a pipeline of requests deep enough for the
// bandwidth-delay product and measures bytes per sample interval.
//
// Failures of the network are measurement data: a flow always yields a flow_report whose `end`
// says how it ended (connect timeout, reset, stall ...). Nothing here throws.
//
// Graceful end: at the deadline the leecher stops requesting, and once every block it asked for
// has arrived it shuts down its write side; the seeder stops on that EOF (with nothing of the
// flow left in its socket) and shuts down its own; both read to EOF within drain_timeout before
// closing, so neither kernel has a reason to send a RST, and no flow's data is still on the path
// when either end reports it done. A close that would reset (unread bytes left) is counted in
// resets_sent.
//
// Thread-safety: a flow runs on the executor it is given; that executor must not run handlers
// concurrently (an io_context run by one thread, or a strand).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility> // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "node/flow/tcp_probe.hpp"
#include "overlay/wire/bytes.hpp"
#include "tests_proto/diff/bt_wire.hpp"

namespace glasnode::node {

// Shared with the schedule, the negotiation messages and the analysis.
using proto::flow_end;
using proto::flow_role;

struct flow_params {
    proto::diff::flow_kind kind = proto::diff::flow_kind::bt;
    flow_role role = flow_role::leech; // this side's role
    // SHA-1 of the negotiation token (proto::diff::info_hash_of_token).
    proto::diff::info_hash_t info_hash{};
    // Measurement window, from the leecher's first request.
    std::chrono::milliseconds duration{10'000};
    // 0: duration / 100. Raised to 10 x the connection's minimum RTT in any case.
    std::chrono::microseconds sample_interval{0};
    std::chrono::milliseconds connect_timeout{10'000};
    // Bound on the handshake and on bitfield/interested/unchoke before the first piece.
    std::chrono::milliseconds handshake_timeout{10'000};
    // A flow in which no byte moves in either direction for this long ends as `stalled`.
    std::chrono::milliseconds stall_timeout{5'000};
    // Bound on the graceful end (write side shut down -> EOF from the peer).
    std::chrono::milliseconds drain_timeout{5'000};
    std::string congestion_control; // TCP_CONGESTION for this side's socket; "" = system default
    // Seed only: the kernel paces the pieces at no more than this many bit/s (a byte budget on
    // fast paths, see proto::diff::schedule_params); 0 = no cap.
    std::uint64_t max_rate_bps = 0;
    std::uint64_t seed = 0; // derives the payload buffer and this side's peer id
    // Keep the first N bytes sent and received in the report (tests; 0 on real flows).
    std::size_t capture_bytes = 0;
};

struct flow_report {
    proto::diff::flow_kind kind = proto::diff::flow_kind::bt;
    flow_role role = flow_role::leech;
    flow_end end = flow_end::error;
    proto::diff::info_hash_t info_hash{}; // as in flow_params (the provider's: as authorised)
    std::string detail;                   // for people: why the flow ended the way it did
    boost::asio::ip::tcp::endpoint remote;

    std::chrono::microseconds connect_time{0}; // agent only: SYN to established
    // Every byte written to / read from the socket, handshake included. The seeder's
    // bytes_sent equals the leecher's bytes_received on a clean flow.
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    // Block bytes carried by piece messages (sent by a seeder, received by a leecher).
    std::uint64_t payload_bytes = 0;

    // Receiver-side measurement (leecher only): bytes read in each interval of the window that
    // starts with the first request. `window_bytes` is their sum; `duration` is how long the
    // window actually lasted (shorter than asked if the flow ended early).
    std::chrono::microseconds duration{0};
    std::chrono::microseconds sample_interval{0};
    std::vector<std::uint64_t> samples;
    std::uint64_t window_bytes = 0;

    std::uint32_t resets_received = 0; // ECONNRESET / EPIPE seen
    std::uint32_t resets_sent = 0;     // our closes that made the kernel send a RST

    tcp_stats tcp_end; // TCP_INFO just before close
    std::string congestion_control;

    bytes captured_sent;     // first flow_params::capture_bytes bytes sent
    bytes captured_received; // first flow_params::capture_bytes bytes received
};

// Connects to `provider`, sends the handshake for params.info_hash and runs the flow in
// params.role. Never throws; every outcome is in the report.
boost::asio::awaitable<flow_report> run_agent_flow(boost::asio::any_io_executor executor,
                                                   boost::asio::ip::tcp::endpoint provider,
                                                   flow_params params);

} // namespace glasnode::node
