#include "node/flow/flow_session.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sodium.h>

#include "node/log.hpp"

namespace glasnode::node::detail {

namespace diff = proto::diff;
using namespace std::chrono_literals;
using boost::system::error_code;

namespace {

constexpr std::size_t leecher_read_size = 1024 * 1024;
constexpr std::size_t seeder_read_size = 64 * 1024;
constexpr std::size_t max_queued_requests = 4096;
constexpr std::uint32_t min_pipeline = 4;    // blocks: 64 KiB, a quarter second at 2 Mbit/s
constexpr std::uint32_t max_pipeline = 1024; // 16 MiB in flight
// Pipeline start-up (update_pipeline_target): a period whose rate rose by more than this factor
// is still start-up; a pipeline whose bytes pass within this share of a round trip limits the
// flow, and then grows by startup_growth a period.
constexpr double startup_rise = 1.25;
constexpr double pipeline_bound_share = 0.5;
constexpr double startup_growth = 4.0;
// The longest wait of requests behind the reverse path's queue the pipeline covers.
constexpr std::chrono::milliseconds max_request_wait{500};
constexpr double min_low_water = 32 * 1024;
constexpr double max_low_water = 512 * 1024;
constexpr std::size_t max_capture = 16 * 1024 * 1024;
constexpr std::uint32_t blocks_per_piece = torrent_piece_length / diff::block_size;

bool is_reset(const error_code& ec) {
    return ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe;
}

std::array<std::uint8_t, 32> derive_key(std::string_view label, std::uint64_t seed) {
    std::uint8_t in[64];
    const std::size_t n = std::min(label.size(), sizeof in - 8);
    std::memcpy(in, label.data(), n);
    for (int i = 0; i < 8; ++i)
        in[n + i] = static_cast<std::uint8_t>(seed >> (8 * i));
    std::array<std::uint8_t, 32> key{};
    crypto_generichash(key.data(), key.size(), in, n + 8, nullptr, 0);
    return key;
}

} // namespace

bytes make_payload(std::uint64_t seed, diff::flow_kind kind) {
    if (sodium_init() < 0)
        std::terminate();
    const auto key = derive_key("glasnode/flow/payload/v1", seed);
    bytes payload(payload_buffer_size);
    randombytes_buf_deterministic(payload.data(), payload.size(), key.data());
    diff::apply_mask(payload, kind);
    return payload;
}

diff::peer_id_t make_flow_peer_id(std::uint64_t seed, flow_role role) {
    const auto key = derive_key(role == flow_role::seed ? "glasnode/flow/peer-id/seed/v1"
                                                        : "glasnode/flow/peer-id/leech/v1",
                                seed);
    return diff::make_peer_id(std::span<const std::uint8_t, 12>(key.data(), 12));
}

std::shared_ptr<flow_session> flow_session::create(asio::any_io_executor executor) {
    return create(tcp::socket(executor));
}

std::shared_ptr<flow_session> flow_session::create(tcp::socket socket) {
    return std::shared_ptr<flow_session>(new flow_session(std::move(socket)));
}

flow_session::flow_session(tcp::socket socket)
    : m_socket(std::move(socket)), m_watch(m_socket.get_executor()),
      m_wake(m_socket.get_executor()), m_writer_done(m_socket.get_executor()) {
    m_wake.expires_at(clock::time_point::max());
    m_writer_done.expires_at(clock::time_point::max());
    error_code ec;
    if (m_socket.is_open())
        m_remote = m_socket.remote_endpoint(ec);
}

// ---- deadlines ----

void flow_session::start_watchdog() {
    if (m_watchdog_running)
        return;
    m_watchdog_running = true;
    asio::co_spawn(m_socket.get_executor(), watchdog(),
                   [self = shared_from_this()](std::exception_ptr e) {
                       self->m_watchdog_running = false;
                       if (e) {
                           // Without its watchdog no deadline holds: end the flow instead.
                           log_coroutine_failure{"flow watchdog"}(e);
                           self->fail(flow_end::error, "watchdog failed");
                       }
                   });
}

void flow_session::poke_watchdog() noexcept {
    m_watch.cancel();
}

void flow_session::enter(phase p, clock::time_point deadline) noexcept {
    if (m_phase == phase::done)
        return; // final: the watchdog may already have ended
    m_phase = p;
    m_phase_deadline = deadline;
    poke_watchdog();
}

asio::awaitable<void> flow_session::watchdog() {
    while (m_phase != phase::done) {
        const auto now = clock::now();
        clock::time_point next = clock::time_point::max();
        switch (m_phase) {
        case phase::connecting:
        case phase::handshaking:
        case phase::setup:
            if (now >= m_phase_deadline) {
                if (m_phase == phase::connecting)
                    fail(flow_end::connect_timeout, "no connection within connect_timeout");
                else if (m_phase == phase::handshaking)
                    fail(flow_end::handshake_failed, "no handshake within handshake_timeout");
                else
                    fail(flow_end::handshake_failed,
                         "bitfield/interested/unchoke not exchanged within handshake_timeout");
                m_phase_deadline = clock::time_point::max();
            } else {
                next = m_phase_deadline;
            }
            break;
        case phase::transfer:
            if (m_params.role == flow_role::leech && now >= m_window_end) {
                leecher_finish(now);
            } else if (m_params.role == flow_role::seed && now >= m_seed_hard_end) {
                seeder_finish(now, "peer kept requesting past duration + drain_timeout");
            } else {
                next = m_params.role == flow_role::leech ? m_window_end : m_seed_hard_end;
            }
            break;
        case phase::draining:
            if (now >= m_drain_deadline) {
                if (!m_end)
                    set_end(flow_end::completed, "peer did not close within drain_timeout");
                m_abort = true;
                error_code ec;
                m_socket.cancel(ec);
                notify_writer();
                m_drain_deadline = clock::time_point::max();
            } else {
                next = m_drain_deadline;
            }
            break;
        default:
            break;
        }
        if ((m_phase == phase::transfer || m_phase == phase::draining) && !m_abort) {
            const auto stall_at = m_last_progress + m_params.stall_timeout;
            if (now >= stall_at)
                fail(flow_end::stalled, "no byte moved for stall_timeout (" +
                                            std::to_string(m_params.stall_timeout.count()) +
                                            " ms)");
            else
                next = std::min(next, stall_at);
        }
        if (m_phase == phase::done)
            break;
        m_watch.expires_at(next);
        error_code ec;
        co_await m_watch.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

// ---- outcome ----

void flow_session::init_report(const flow_params& params) {
    m_params = params;
    m_report.kind = params.kind;
    m_report.role = params.role;
    m_report.info_hash = params.info_hash;
    m_report.remote = m_remote;
    m_params.capture_bytes = std::min(params.capture_bytes, max_capture);
    if (m_params.stall_timeout <= 0ms)
        m_params.stall_timeout = 1ms;
}

void flow_session::set_end(flow_end end, std::string detail) {
    // A RST can surface as EOF first: when a pending write consumes the socket error, the
    // following read sees only the shut-down receive side. The reset is the better account.
    if (!diff::replaces_end(m_end, end))
        return;
    m_end = end;
    m_report.detail = std::move(detail);
}

void flow_session::fail(flow_end end, std::string detail) {
    set_end(end, std::move(detail));
    m_abort = true;
    error_code ec;
    m_socket.cancel(ec);
    notify_writer();
}

void flow_session::note_io_error(const error_code& ec, std::string_view what) {
    if (ec == asio::error::operation_aborted && m_abort)
        return; // already explained
    if (is_reset(ec)) {
        ++m_report.resets_received;
        fail(flow_end::reset_received, std::string{what} + ": " + ec.message());
        return;
    }
    fail(flow_end::error, std::string{what} + ": " + ec.message());
}

void flow_session::abort(std::string reason) noexcept {
    fail(flow_end::error, std::move(reason));
    error_code ec;
    m_socket.close(ec);
    // Every operation now fails at once, so no deadline is left to enforce. Ending the watchdog
    // here, not only in finish(), matters for a session that has no flow running (between
    // accept and run_provider): nothing else would end it, and its timer would keep the
    // executor busy forever.
    m_phase = phase::done;
    poke_watchdog();
}

void flow_session::close_unused() noexcept {
    m_phase = phase::done;
    poke_watchdog();
    // Unread bytes make the kernel answer the close with a RST instead of a FIN.
    if (m_socket.is_open() && unread_bytes(m_socket.native_handle()) > 0)
        ++m_report.resets_sent;
    error_code ec;
    m_socket.close(ec);
}

// ---- capture (tests) ----

void flow_session::capture(bytes& into, const std::uint8_t* data, std::size_t n) {
    if (into.size() >= m_params.capture_bytes)
        return;
    const std::size_t take = std::min(n, m_params.capture_bytes - into.size());
    into.insert(into.end(), data, data + take);
}

void flow_session::capture_sent(const std::vector<asio::const_buffer>& bufs, std::size_t n) {
    for (const auto& b : bufs) {
        if (n == 0 || m_report.captured_sent.size() >= m_params.capture_bytes)
            return;
        const std::size_t take = std::min(n, b.size());
        capture(m_report.captured_sent, static_cast<const std::uint8_t*>(b.data()), take);
        n -= take;
    }
}

// ---- agent ----

bool flow_session::apply_socket_options(const flow_params& params) {
    if (!params.congestion_control.empty()) {
        if (auto st = set_congestion_control(m_socket.native_handle(), params.congestion_control);
            !st) {
            set_end(flow_end::error, st.err().describe());
            return false;
        }
    }
    if (params.role == flow_role::seed && params.max_rate_bps > 0) {
        if (auto st = set_max_pacing_rate(m_socket.native_handle(), params.max_rate_bps); !st) {
            set_end(flow_end::error, st.err().describe());
            return false;
        }
    }
    return true;
}

asio::awaitable<flow_report> flow_session::run_agent(tcp::endpoint provider, flow_params params) {
    init_report(params);
    m_remote = provider;
    m_report.remote = provider;
    if (params.role == flow_role::seed)
        m_payload = make_payload(params.seed, params.kind);
    start_watchdog();

    error_code ec;
    m_socket.open(provider.protocol(), ec);
    if (ec) {
        set_end(flow_end::error, "socket: " + ec.message());
        co_await finish();
        co_return m_report;
    }
    if (!apply_socket_options(params)) {
        co_await finish();
        co_return m_report;
    }

    const auto connect_start = clock::now();
    enter(phase::connecting, connect_start + params.connect_timeout);
    co_await m_socket.async_connect(provider, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        if (!m_abort)
            set_end(flow_end::connect_failed, "connect: " + ec.message());
        co_await finish();
        co_return m_report;
    }
    m_report.connect_time =
        std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - connect_start);

    enter(phase::handshaking, clock::now() + params.handshake_timeout);
    diff::handshake ours;
    ours.reserved = diff::client_reserved_bytes();
    ours.info_hash = params.info_hash;
    ours.peer_id = make_flow_peer_id(params.seed, params.role);
    const auto hs = diff::encode_handshake(ours, params.kind);
    const std::size_t sent = co_await asio::async_write(
        m_socket, asio::buffer(hs), asio::redirect_error(asio::use_awaitable, ec));
    m_report.bytes_sent += sent;
    capture(m_report.captured_sent, hs.data(), sent);
    if (ec) {
        note_io_error(ec, "sending handshake");
        co_await finish();
        co_return m_report;
    }

    diff::handshake_bytes theirs{};
    const std::size_t got = co_await asio::async_read(
        m_socket, asio::buffer(theirs), asio::redirect_error(asio::use_awaitable, ec));
    m_report.bytes_received += got;
    capture(m_report.captured_received, theirs.data(), got);
    if (ec) {
        if (ec == asio::error::eof)
            set_end(flow_end::refused,
                    "provider closed before answering the handshake (token refused?)");
        else
            note_io_error(ec, "reading handshake");
        co_await finish();
        co_return m_report;
    }
    auto peer = diff::decode_handshake(theirs, params.kind);
    if (!peer) {
        set_end(flow_end::handshake_failed, peer.err().describe());
    } else if (peer->info_hash != params.info_hash) {
        set_end(flow_end::handshake_failed, "provider answered with another info-hash");
    } else {
        co_await transfer();
    }
    co_await finish();
    co_return m_report;
}

// ---- provider ----

asio::awaitable<result<diff::classified_handshake>>
flow_session::read_peer_handshake(std::chrono::milliseconds timeout) {
    if (m_abort)
        co_return make_error(errc::closed, m_report.detail);
    start_watchdog();
    enter(phase::handshaking, clock::now() + timeout);
    error_code ec;
    const std::size_t got = co_await asio::async_read(
        m_socket, asio::buffer(m_peer_hs), asio::redirect_error(asio::use_awaitable, ec));
    m_report.bytes_received += got;
    if (ec) {
        const std::string n = std::to_string(got);
        error e = make_error(errc::io_error, "reading handshake: " + ec.message());
        if (m_end == flow_end::handshake_failed)
            e = make_error(errc::timeout, "no handshake within " + std::to_string(timeout.count()) +
                                              " ms (" + n + " of 68 bytes)");
        else if (m_abort)
            e = make_error(errc::closed, m_report.detail);
        else if (ec == asio::error::eof || is_reset(ec))
            e = make_error(errc::closed,
                           "peer closed after " + n + " of 68 bytes (" + ec.message() + ")");
        if (is_reset(ec))
            ++m_report.resets_received;
        // The connection is of no further use: end it here, with its watchdog, rather than
        // trust every caller to.
        close_unused();
        co_return e;
    }
    if (m_phase != phase::done)
        m_phase = phase::idle; // no deadline while the validator decides
    co_return diff::classify_handshake(m_peer_hs);
}

asio::awaitable<flow_report> flow_session::run_provider(flow_params params) {
    // What the peer sent decides kind and info-hash; the validator decided the rest.
    const auto peer = diff::classify_handshake(m_peer_hs);
    if (peer) {
        params.kind = peer->kind;
        params.info_hash = peer->hs.info_hash;
    }
    init_report(params);
    capture(m_report.captured_received, m_peer_hs.data(), m_peer_hs.size());
    if (params.role == flow_role::seed)
        m_payload = make_payload(params.seed, params.kind);
    start_watchdog();

    if (!apply_socket_options(params)) {
        co_await finish();
        co_return m_report;
    }
    diff::handshake ours;
    ours.reserved = diff::client_reserved_bytes();
    ours.info_hash = params.info_hash;
    ours.peer_id = make_flow_peer_id(params.seed, params.role);
    const auto hs = diff::encode_handshake(ours, params.kind);
    m_out.assign(hs.begin(), hs.end()); // sent by the writer, ahead of the first message
    co_await transfer();
    co_await finish();
    co_return m_report;
}

// ---- the flow proper ----

asio::awaitable<void> flow_session::transfer() {
    error_code ec;
    m_socket.set_option(tcp::no_delay(true), ec);
    m_last_progress = clock::now();
    enter(phase::setup, m_last_progress + m_params.handshake_timeout);
    m_parser.emplace(m_params.kind, false);
    m_read_buf.resize(m_params.role == flow_role::leech ? leecher_read_size : seeder_read_size);
    if (m_params.role == flow_role::seed) {
        const bytes bits((torrent_pieces + 7) / 8, 0xff);
        diff::append_bitfield(m_out, bits, m_params.kind);
    }

    m_writer_running = true;
    asio::co_spawn(m_socket.get_executor(), writer(),
                   [self = shared_from_this()](std::exception_ptr e) {
                       if (e) {
                           log_coroutine_failure{"flow writer"}(e);
                           self->fail(flow_end::error, "writer failed");
                       }
                       self->m_writer_running = false;
                       self->m_writer_done.cancel();
                   });

    while (!m_abort) {
        const std::size_t n = co_await m_socket.async_read_some(
            asio::buffer(m_read_buf), asio::redirect_error(asio::use_awaitable, ec));
        const auto now = clock::now();
        if (n > 0)
            on_read(n, now);
        if (ec) {
            if (ec == asio::error::eof)
                on_eof(now);
            else
                note_io_error(ec, "read");
            break;
        }
    }
}

void flow_session::on_read(std::size_t n, clock::time_point now) {
    m_last_progress = now;
    m_report.bytes_received += n;
    capture(m_report.captured_received, m_read_buf.data(), n);
    if (m_params.role == flow_role::leech && m_window_start != clock::time_point{} &&
        now < m_window_end) {
        const auto since =
            std::chrono::duration_cast<std::chrono::microseconds>(now - m_window_start);
        const std::size_t idx = diff::sample_index(m_plan, since);
        m_report.samples[idx] += n;
        m_report.window_bytes += n;
        if (now - m_rate_mark >= m_rate_period) {
            const double secs = std::chrono::duration<double>(now - m_rate_mark).count();
            update_pipeline_target(static_cast<double>(m_report.window_bytes - m_rate_mark_bytes) /
                                   secs);
            m_rate_mark = now;
            m_rate_mark_bytes = m_report.window_bytes;
        }
    }
    m_events.clear();
    const auto st = m_parser->feed(byte_view(m_read_buf.data(), n), m_events);
    handle_events(now);
    if (!st) {
        fail(m_phase == phase::setup ? flow_end::handshake_failed : flow_end::error,
             "peer broke the protocol: " + st.err().describe());
        return;
    }
    if (m_params.role == flow_role::leech) {
        m_report.payload_bytes = m_parser->payload_bytes();
        if (!m_finishing && now >= m_window_end)
            leecher_finish(now);
        else if (!m_finishing)
            top_up_requests();
        else if (leech_drained())
            notify_writer(); // the last block asked for arrived: the write side may close
    }
}

void flow_session::handle_events(clock::time_point now) {
    bool wake = false;
    for (const auto& e : m_events) {
        if (m_abort)
            return;
        if (m_params.role == flow_role::leech) {
            switch (e.type) {
            case diff::message_type::bitfield:
                if (!m_sent_interested) {
                    m_sent_interested = true;
                    diff::append_simple(m_out, diff::message_id::interested, m_params.kind);
                    wake = true;
                }
                break;
            case diff::message_type::unchoke:
                m_unchoked = true;
                if (m_phase == phase::setup)
                    start_window(now);
                break;
            case diff::message_type::choke:
                // BEP 3: a choke discards every outstanding request.
                m_unchoked = false;
                m_outstanding = 0;
                break;
            case diff::message_type::piece:
                // The event comes with the piece's header; its block is drained once the parser
                // is back at a message boundary (leech_drained).
                if (m_outstanding > 0)
                    --m_outstanding;
                break;
            default:
                break;
            }
        } else {
            switch (e.type) {
            case diff::message_type::interested:
                if (!m_peer_interested) {
                    m_peer_interested = true;
                    diff::append_simple(m_out, diff::message_id::unchoke, m_params.kind);
                    m_seed_start = now;
                    m_seed_hard_end =
                        now + m_params.duration + m_params.drain_timeout + m_params.duration / 10;
                    enter(phase::transfer, clock::time_point::max());
                    wake = true;
                }
                break;
            case diff::message_type::request: {
                if (!m_peer_interested || m_stop_serving)
                    break;
                const bool valid =
                    e.index < torrent_pieces && e.length > 0 && e.length <= diff::block_size &&
                    e.begin % diff::block_size == 0 && e.begin + e.length <= torrent_piece_length;
                if (!valid) {
                    fail(flow_end::error, "peer requested an invalid block");
                    return;
                }
                if (m_requests.size() >= max_queued_requests) {
                    fail(flow_end::error, "peer exceeded " + std::to_string(max_queued_requests) +
                                              " queued requests");
                    return;
                }
                m_requests.push_back({e.index, e.begin, e.length});
                wake = true;
                break;
            }
            case diff::message_type::cancel: {
                const auto it =
                    std::find_if(m_requests.begin(), m_requests.end(), [&](const auto& r) {
                        return r.index == e.index && r.begin == e.begin && r.length == e.length;
                    });
                if (it != m_requests.end())
                    m_requests.erase(it);
                break;
            }
            default:
                break;
            }
        }
    }
    if (wake)
        notify_writer();
}

void flow_session::start_window(clock::time_point now) {
    const auto tcp = read_tcp_stats(m_socket.native_handle());
    std::chrono::microseconds min_rtt{tcp.min_rtt_us};
    if (min_rtt.count() == 0)
        min_rtt = m_report.connect_time;
    // Recorded at the finest interval the plan allows and coarsened to 10 minimum RTTs at the
    // end (finish: diff::coarsen_samples), when the flow's minimum RTT, not the handshake's, is
    // known.
    const auto plan =
        diff::plan_samples(std::chrono::duration_cast<std::chrono::microseconds>(m_params.duration),
                           m_params.sample_interval, std::chrono::microseconds{0});
    m_plan = plan;
    m_report.sample_interval = plan.interval;
    m_report.samples.assign(plan.count, 0);
    m_window_start = now;
    m_window_end = now + m_params.duration;
    m_rate_mark = now;
    m_rate_mark_bytes = 0;
    m_rate_period = rate_period(min_rtt);
    enter(phase::transfer, clock::time_point::max());
}

flow_session::clock::duration flow_session::rate_period(std::chrono::microseconds rtt) {
    return std::clamp<clock::duration>(2 * rtt, std::chrono::milliseconds(20),
                                       std::chrono::milliseconds(250));
}

std::uint32_t next_pipeline_target(const pipeline_state& s) noexcept {
    // Keep rate x (2 min_rtt + 20 ms + the reverse path's queueing) in flight: enough for the
    // bandwidth-delay product with margin for scheduling jitter, small enough that the graceful
    // end drains in about that time even on a throttled path. The path's minimum RTT, not the
    // smoothed one, for the forward part: behind a deep queue the smoothed RTT includes the
    // queueing our own pieces caused, and sizing the pipeline by all of it grows the queue
    // further (measured at 2 Mbit/s: seconds of data in flight, drained after every flow).
    // The requests themselves wait too, behind whatever else goes the other way (the other
    // direction's flow of the slot, with directions_together): this socket's smoothed RTT is
    // that of its own segments, the requests, so its excess over the minimum is the wait the
    // pipeline must also cover (measured without it: flows held at 28 of 50 Mbit/s with ~36 ms
    // of requests queued behind the upload beside them). Bounded by max_request_wait, so a
    // queue of seconds cannot make the pipeline seconds long.
    // Start-up: while the seeder's TCP is still in slow start its rate, not the path's, is what a
    // period measures, and a pipeline sized by it is the next period's limit. So the pipeline
    // never shrinks while the rate still rises (by more than a quarter over the last period),
    // and while it is the limit (one minimum round trip of the rate fills half the target or
    // more; in steady state it fills less than half) it grows four times a period of two round
    // trips: twice a round trip, as slow start does. Sized by each period's rate alone, the
    // first period (mostly the round trip before the first piece) halved it, and a 2.5 s flow
    // at 120 ms RTT on 50 Mbit/s reached the link only after 2.4 s (iperf3 on the same path:
    // 0.8 s).
    // Otherwise a pipeline that limits the flow passes target / rtt, so the new target is about
    // twice the old one. It never falls below half of the old target in one step, so one slow
    // period (a loss recovery) does not starve the next.
    const double horizon = 2 * s.min_rtt_s + 0.020 + s.request_wait_s;
    const double target_bytes = static_cast<double>(s.target) * diff::block_size;
    double blocks = std::max(s.rate * horizon / static_cast<double>(diff::block_size),
                             static_cast<double>(s.target) / 2);
    if (s.rate > startup_rise * s.last_rate)
        blocks = std::max(blocks, static_cast<double>(s.target));
    if (s.rate * s.min_rtt_s >= pipeline_bound_share * target_bytes)
        blocks = std::max(blocks, startup_growth * static_cast<double>(s.target));
    return static_cast<std::uint32_t>(
        std::clamp(blocks, static_cast<double>(min_pipeline), static_cast<double>(max_pipeline)));
}

void flow_session::update_pipeline_target(double rate) {
    const auto tcp = read_tcp_stats(m_socket.native_handle());
    const std::uint32_t rtt_us = tcp.min_rtt_us > 0 ? tcp.min_rtt_us : tcp.rtt_us;
    const double request_wait =
        tcp.rtt_us > rtt_us ? std::min(1e-6 * (tcp.rtt_us - rtt_us),
                                       std::chrono::duration<double>(max_request_wait).count())
                            : 0.0;
    m_target = next_pipeline_target({.target = m_target,
                                     .rate = rate,
                                     .last_rate = m_last_rate,
                                     .min_rtt_s = 1e-6 * rtt_us,
                                     .request_wait_s = request_wait});
    m_last_rate = rate;
    m_rate_period = rate_period(std::chrono::microseconds(rtt_us));
    set_receive_low_water(rate);
}

void flow_session::set_receive_low_water(double rate) {
    // At high rates, waking the leecher for every few KiB costs more CPU than the copy itself.
    // SO_RCVLOWAT makes each wake-up carry a large read. It stays a small fraction of a sample
    // interval (so samples keep their resolution) and of the data in flight (so the bytes that
    // are still coming always reach it: a low-water mark above them would never be met).
    double lowat = std::min(rate * std::chrono::duration<double>(m_plan.interval).count() / 16,
                            static_cast<double>(m_target) * diff::block_size / 4);
    lowat = std::min(lowat, static_cast<double>(max_low_water));
    const int value = m_finishing || lowat < min_low_water ? 1 : static_cast<int>(lowat);
    if (value == m_low_water)
        return;
    error_code ec;
    m_socket.set_option(asio::socket_base::receive_low_watermark(value), ec);
    if (!ec)
        m_low_water = value;
}

void flow_session::top_up_requests() {
    // Requests go out in batches of a quarter of the pipeline: one small write per few MiB
    // received instead of one per read, which would wake the seeder for every 17-byte message.
    const std::uint32_t batch = std::max<std::uint32_t>(1, m_target / 4);
    if (m_finishing || !m_unchoked || m_abort || m_outstanding + batch > m_target)
        return;
    const std::uint32_t add = m_target - m_outstanding;
    const std::size_t at = m_out.size();
    m_out.resize(at + add * diff::request_message_size);
    for (std::uint32_t i = 0; i < add; ++i) {
        const std::uint64_t block = m_next_block++;
        const auto index = static_cast<std::uint32_t>((block / blocks_per_piece) % torrent_pieces);
        const auto begin =
            static_cast<std::uint32_t>((block % blocks_per_piece) * diff::block_size);
        diff::write_request(
            std::span<std::uint8_t, diff::request_message_size>(
                m_out.data() + at + i * diff::request_message_size, diff::request_message_size),
            index, begin, diff::block_size, m_params.kind);
    }
    m_outstanding += add;
    m_unsent_requests += add;
    notify_writer();
}

void flow_session::leecher_finish(clock::time_point now) {
    if (m_finishing)
        return;
    m_finishing = true;
    m_out.clear(); // requests not yet sent are simply never made
    m_outstanding -= std::min(m_outstanding, m_unsent_requests);
    m_unsent_requests = 0;
    set_receive_low_water(0);
    m_drain_deadline = now + m_params.drain_timeout;
    enter(phase::draining, clock::time_point::max());
    notify_writer();
}

void flow_session::seeder_finish(clock::time_point now, std::string detail) {
    if (m_stop_serving)
        return;
    m_stop_serving = true;
    m_requests.clear();
    if (!detail.empty())
        set_end(flow_end::error, std::move(detail));
    m_drain_deadline = now + m_params.drain_timeout;
    enter(phase::draining, clock::time_point::max());
    notify_writer();
}

void flow_session::on_eof(clock::time_point now) {
    if (m_params.role == flow_role::leech) {
        const flow_end end = diff::leech_eof_end(m_finishing);
        set_end(end, end == flow_end::completed ? ""
                     : m_phase == phase::setup  ? "peer closed before unchoke"
                                                : "peer closed mid-flow");
        m_peer_eof = true; // nothing more can arrive
        notify_writer();
        return;
    }
    // The leecher's EOF is how a seeder learns the window is over.
    const flow_end end = diff::seed_eof_end(
        m_peer_interested,
        std::chrono::duration_cast<std::chrono::microseconds>(now - m_seed_start),
        std::chrono::duration_cast<std::chrono::microseconds>(m_params.duration));
    set_end(end, end == flow_end::completed ? ""
                 : m_peer_interested        ? "peer closed before the duration"
                                            : "peer closed before interested");
    seeder_finish(now, "");
}

bool flow_session::leech_drained() const noexcept {
    // A piece's event is emitted with its header, before its block: every block asked for has
    // arrived only when none is outstanding and the parser is not inside one.
    return m_outstanding == 0 && m_parser && m_parser->at_message_boundary();
}

void flow_session::notify_writer() noexcept {
    m_wake.cancel();
}

asio::awaitable<void> flow_session::writer() {
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(64);
    error_code ec;
    for (;;) {
        const bool serve =
            m_params.role == flow_role::seed && !m_stop_serving && !m_requests.empty();
        // A leecher closes its write side once every block it asked for has arrived: then the
        // seeder has nothing left in its socket when it sees the EOF, and neither end reports
        // the flow done while its data is still on the path (the next slot would start behind
        // it: measured, a 20 ms tail of an upload delayed the next slot's handshakes by 4 ms,
        // and the paired slot after it ran its download at 0.4 of the link).
        const bool done = m_params.role == flow_role::seed
                              ? m_stop_serving
                              : m_finishing && (m_peer_eof || leech_drained());
        if (m_abort)
            co_return;
        if (m_out.empty() && !serve) {
            if (done)
                break;
            co_await m_wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        bufs.clear();
        std::uint64_t payload = 0;
        if (!m_out.empty()) {
            m_writing.swap(m_out);
            m_out.clear();
            m_unsent_requests = 0;
            bufs.push_back(asio::buffer(m_writing));
        }
        for (std::size_t i = 0; serve && i < m_headers.size() && !m_requests.empty(); ++i) {
            const block_request r = m_requests.front();
            m_requests.pop_front();
            diff::write_piece_header(m_headers[i], r.index, r.begin, r.length, m_params.kind);
            const std::size_t offset =
                (std::size_t{r.index} * torrent_piece_length + r.begin) % payload_buffer_size;
            bufs.push_back(asio::buffer(m_headers[i]));
            bufs.push_back(asio::buffer(m_payload.data() + offset, r.length));
            payload += r.length;
        }
        const std::size_t n = co_await asio::async_write(
            m_socket, bufs, asio::redirect_error(asio::use_awaitable, ec));
        m_report.bytes_sent += n;
        if (m_report.captured_sent.size() < m_params.capture_bytes)
            capture_sent(bufs, n);
        if (n > 0)
            m_last_progress = clock::now();
        if (ec) {
            note_io_error(ec, "write");
            co_return;
        }
        m_report.payload_bytes += m_params.role == flow_role::seed ? payload : 0;
        m_writing.clear();
    }
    m_socket.shutdown(tcp::socket::shutdown_send, ec);
    m_write_shut = true;
}

asio::awaitable<void> flow_session::finish() {
    error_code ec;
    while (m_writer_running) {
        co_await m_writer_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    const auto now = clock::now();
    if (m_window_start != clock::time_point{}) {
        m_report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
            std::min(now, m_window_end) - m_window_start);
    } else if (m_seed_start != clock::time_point{}) {
        m_report.duration =
            std::chrono::duration_cast<std::chrono::microseconds>(now - m_seed_start);
    }
    if (m_params.role == flow_role::leech && m_parser)
        m_report.payload_bytes = m_parser->payload_bytes();
    if (m_socket.is_open()) {
        const int fd = m_socket.native_handle();
        m_report.tcp_end = read_tcp_stats(fd);
        if (m_params.role == flow_role::leech)
            diff::coarsen_samples(m_report.samples, m_report.sample_interval,
                                  std::chrono::microseconds(m_report.tcp_end.min_rtt_us));
        m_report.congestion_control = congestion_control(fd);
        if (const int err = pending_socket_error(fd); err == ECONNRESET || err == EPIPE) {
            ++m_report.resets_received;
            set_end(flow_end::reset_received, "connection reset (seen at close)");
        }
        if (unread_bytes(fd) > 0)
            ++m_report.resets_sent;
        m_socket.close(ec);
    }
    if (!m_end)
        set_end(flow_end::error, "flow ended without an outcome");
    m_report.end = *m_end;
    m_phase = phase::done;
    poke_watchdog();
}

} // namespace glasnode::node::detail
