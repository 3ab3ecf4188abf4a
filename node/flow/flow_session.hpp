// Internal to node/flow: one connection of the flow engine, from connect (agent) or accept
// (provider) to close. run_agent_flow and test_port_listener are its only users.
//
// A session runs up to three coroutines on its executor: the caller's (reader), a writer, and a
// watchdog that enforces every deadline (connect, handshake, stall, window end, drain) by
// cancelling the socket. They share state without locks, so the executor must not run handlers
// concurrently.
//
// Lifetime: always held by std::shared_ptr (create()); the writer and the watchdog hold a
// reference until they end, which is bounded by the deadlines above. Not copyable or movable.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility> // before Asio (Boost 1.74 needs it for std::exchange)
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "node/flow/flow.hpp"
#include "storage/result.hpp"
#include "tests_proto/diff/bt_wire.hpp"
#include "tests_proto/diff/sampling.hpp"

namespace glasnode::node::detail {

namespace asio = boost::asio;
using asio::ip::tcp;

// The torrent both sides pretend to share: 8192 pieces of 1 MiB (a 1 KiB bitfield).
inline constexpr std::uint32_t torrent_pieces = 8192;
inline constexpr std::uint32_t torrent_piece_length = 1024 * 1024;

// The leecher's request pipeline, resized every period of about two round trips from the rate
// received in it (flow_session::update_pipeline_target; the reasons are at its definition).
struct pipeline_state {
    std::uint32_t target = 0;  // blocks in flight now
    double rate = 0;           // bytes/s received in the period just ended
    double last_rate = 0;      // bytes/s of the period before (0: none yet)
    double min_rtt_s = 0;      // the connection's minimum RTT
    double request_wait_s = 0; // how long requests wait behind the reverse path's queue
};
// The next period's target, in blocks.
std::uint32_t next_pipeline_target(const pipeline_state& s) noexcept;
inline constexpr std::size_t payload_buffer_size = 2 * 1024 * 1024; // a multiple of block_size

class flow_session : public std::enable_shared_from_this<flow_session> {
public:
    static std::shared_ptr<flow_session> create(asio::any_io_executor executor);
    static std::shared_ptr<flow_session> create(tcp::socket socket);
    flow_session(const flow_session&) = delete;
    flow_session& operator=(const flow_session&) = delete;

    // Agent: connect, handshake, run the flow.
    asio::awaitable<flow_report> run_agent(tcp::endpoint provider, flow_params params);

    // Provider, step 1: read and classify the peer's 68-byte handshake within `timeout`.
    // errc::timeout, errc::closed (EOF or reset before 68 bytes), errc::protocol_error
    // (neither BitTorrent nor its inverse), errc::io_error.
    asio::awaitable<result<proto::diff::classified_handshake>>
    read_peer_handshake(std::chrono::milliseconds timeout);
    // Provider, step 2 (after the token was accepted): answer the handshake and run the flow.
    // params.kind and params.info_hash are taken from the peer's handshake.
    asio::awaitable<flow_report> run_provider(flow_params params);
    // Provider without a flow: close the connection (refused or rejected). A close that leaves
    // the peer's bytes unread sends a RST and counts in resets_sent().
    void close_unused() noexcept;
    // Resets seen so far (a RST that ended the handshake read counts).
    std::uint32_t resets_received() const noexcept { return m_report.resets_received; }
    // Resets our closes sent so far.
    std::uint32_t resets_sent() const noexcept { return m_report.resets_sent; }

    // Ends the session from outside (listener stopping): the flow ends as `error`.
    void abort(std::string reason) noexcept;

    tcp::endpoint remote() const noexcept { return m_remote; }

private:
    using clock = std::chrono::steady_clock;
    enum class phase : std::uint8_t {
        idle,
        connecting,
        handshaking,
        setup,
        transfer,
        draining,
        done
    };

    explicit flow_session(tcp::socket socket);

    void start_watchdog();
    asio::awaitable<void> watchdog();
    void poke_watchdog() noexcept;
    void enter(phase p, clock::time_point deadline) noexcept;

    void init_report(const flow_params& params);
    void set_end(flow_end end, std::string detail);
    // Sets the socket's congestion control if params name one, and a seed's pacing cap if
    // params set one; false (flow ended) on failure.
    bool apply_socket_options(const flow_params& params);
    void fail(flow_end end, std::string detail); // set_end + cancel everything
    void note_io_error(const boost::system::error_code& ec, std::string_view what);

    asio::awaitable<void> transfer();
    asio::awaitable<void> writer();
    void notify_writer() noexcept;
    bool leech_drained() const noexcept;
    asio::awaitable<void> finish();

    void on_read(std::size_t n, clock::time_point now);
    void handle_events(clock::time_point now);
    void start_window(clock::time_point now);
    // `rate_bytes_per_s`: window bytes received since the last resize, per second.
    void update_pipeline_target(double rate_bytes_per_s);
    // How often the pipeline is resized: two round trips, within 20-250 ms.
    static clock::duration rate_period(std::chrono::microseconds rtt);
    void set_receive_low_water(double rate);
    void top_up_requests();
    void leecher_finish(clock::time_point now);
    void seeder_finish(clock::time_point now, std::string detail);
    void on_eof(clock::time_point now);

    void capture(bytes& into, const std::uint8_t* data, std::size_t n);
    void capture_sent(const std::vector<asio::const_buffer>& bufs, std::size_t n);

    tcp::socket m_socket;
    asio::steady_timer m_watch;
    asio::steady_timer m_wake;        // wakes the writer
    asio::steady_timer m_writer_done; // wakes the reader when the writer has ended
    tcp::endpoint m_remote;
    proto::diff::handshake_bytes m_peer_hs{}; // provider: what the agent sent first

    flow_params m_params;
    flow_report m_report;
    std::optional<flow_end> m_end;
    bool m_abort = false; // stop all I/O now (deadline, reset, error)

    phase m_phase = phase::idle;
    clock::time_point m_phase_deadline = clock::time_point::max();
    clock::time_point m_last_progress{};
    bool m_watchdog_running = false;
    bool m_writer_running = false;

    std::optional<proto::diff::wire_parser> m_parser;
    std::vector<proto::diff::wire_event> m_events;
    std::vector<std::uint8_t> m_read_buf;

    bytes m_out;     // control messages and requests waiting for the writer
    bytes m_writing; // what the writer is sending now
    bool m_write_shut = false;

    // Leecher.
    bool m_sent_interested = false;
    bool m_unchoked = false;
    bool m_finishing = false; // stopped requesting; write side shut down once all arrived
    std::uint32_t m_outstanding = 0;
    bool m_peer_eof = false; // leecher: the seeder closed; nothing more arrives
    // Of m_outstanding, the requests still in m_out (not yet handed to the socket).
    std::uint32_t m_unsent_requests = 0;
    std::uint32_t m_target = 16; // blocks in flight until the first rate sizes the pipeline
    // The pipeline is resized every m_rate_period (two round trips, within 20-250 ms) from the
    // window bytes received since m_rate_mark: often enough that a pipeline too short for the
    // path doubles every period instead of once per sample interval.
    clock::time_point m_rate_mark{};
    std::uint64_t m_rate_mark_bytes = 0;
    clock::duration m_rate_period{std::chrono::milliseconds(20)};
    double m_last_rate = 0;         // bytes/s of the last period (start-up: the rate still rises)
    std::uint64_t m_next_block = 0; // sequential block cursor over the torrent
    clock::time_point m_window_start{};
    clock::time_point m_window_end = clock::time_point::max();
    clock::time_point m_drain_deadline = clock::time_point::max();
    proto::diff::sample_plan m_plan;
    int m_low_water = 1; // SO_RCVLOWAT in force

    // Seeder.
    struct block_request {
        std::uint32_t index;
        std::uint32_t begin;
        std::uint32_t length;
    };
    std::deque<block_request> m_requests;
    bytes m_payload; // pre-inverted for a control flow
    bool m_peer_interested = false;
    bool m_stop_serving = false;
    clock::time_point m_seed_start{};
    clock::time_point m_seed_hard_end = clock::time_point::max();
    std::array<std::array<std::uint8_t, proto::diff::piece_header_size>, 31> m_headers{};
};

// Deterministic per-flow material derived from flow_params::seed.
bytes make_payload(std::uint64_t seed, proto::diff::flow_kind kind);
proto::diff::peer_id_t make_flow_peer_id(std::uint64_t seed, flow_role role);

} // namespace glasnode::node::detail
