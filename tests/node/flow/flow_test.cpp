// Real flows over 127.0.0.1: the agent (run_agent_flow) against the provider's test port
// (test_port_listener), and each of them against hand-written misbehaving peers.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "node/flow/flow.hpp"
#include "node/flow/test_port_listener.hpp"
#include "tests_proto/diff/bt_wire.hpp"

namespace glasnode::node {
namespace {

namespace asio = boost::asio;
namespace diff = proto::diff;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

const tcp::endpoint loopback{asio::ip::make_address("127.0.0.1"), 0};

// Runs `body` on `ioc` until it finishes; fails the test if it takes longer than `limit`.
void run_test(asio::io_context& ioc, std::function<asio::awaitable<void>()> body,
              std::chrono::seconds limit = 60s) {
    bool done = false;
    ioc.restart();
    asio::co_spawn(ioc, std::move(body), [&](std::exception_ptr e) {
        done = true;
        ioc.stop(); // listeners keep the context busy forever
        if (e)
            std::rethrow_exception(e);
    });
    ioc.run_for(limit);
    ASSERT_TRUE(done) << "test body did not finish within " << limit.count() << " s";
}

// Wakes waiting coroutines when a callback changes something they wait for.
class notifier {
public:
    explicit notifier(asio::io_context& ioc) : m_timer(ioc) {
        m_timer.expires_at(clock::time_point::max());
    }
    void notify() { m_timer.cancel(); }
    // Waits until pred() holds or `limit` passes; returns pred().
    asio::awaitable<bool> wait(std::function<bool()> pred, std::chrono::milliseconds limit) {
        const auto give_up = clock::now() + limit;
        asio::steady_timer guard(m_timer.get_executor());
        guard.expires_at(give_up);
        guard.async_wait([this](error_code ec) {
            if (!ec)
                m_timer.cancel();
        });
        while (!pred() && clock::now() < give_up) {
            error_code ec;
            co_await m_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        guard.cancel();
        co_return pred();
    }

private:
    using clock = std::chrono::steady_clock;
    asio::steady_timer m_timer;
};

flow_params base_params(diff::flow_kind kind, flow_role role, std::uint64_t seed) {
    flow_params p;
    p.kind = kind;
    p.role = role;
    p.info_hash = diff::info_hash_of_token(as_bytes("token-" + std::to_string(seed)));
    p.duration = 1000ms;
    p.connect_timeout = 5000ms;
    p.handshake_timeout = 5000ms;
    p.stall_timeout = 3000ms;
    p.drain_timeout = 3000ms;
    p.seed = seed;
    return p;
}

flow_role other(flow_role r) {
    return r == flow_role::seed ? flow_role::leech : flow_role::seed;
}

// A test port whose validator knows exactly one info-hash.
struct provider {
    explicit provider(asio::io_context& ioc, test_port_config cfg = {}) : changed(ioc) {
        cfg.bind = loopback;
        auto l = test_port_listener::open(
            ioc.get_executor(), cfg,
            [this](const flow_request& r) -> std::optional<flow_params> {
                requests.push_back(r);
                if (!accepted || r.info_hash != accepted->info_hash)
                    return std::nullopt;
                return accepted;
            },
            [this](const flow_report& r) {
                reports.push_back(r);
                changed.notify();
            },
            [this](const flow_rejection& r) {
                rejections.push_back(r);
                changed.notify();
            });
        EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.err().describe());
        if (l.ok())
            listener = std::move(*l);
    }
    tcp::endpoint endpoint() const { return listener->local_endpoint(); }

    std::unique_ptr<test_port_listener> listener;
    std::optional<flow_params> accepted;
    std::vector<flow_request> requests;
    std::vector<flow_report> reports;
    std::vector<flow_rejection> rejections;
    notifier changed;
};

// ---- Real flows in every kind and role ----

class FlowPair : public ::testing::TestWithParam<std::tuple<diff::flow_kind, flow_role>> {};

TEST_P(FlowPair, CompletesWithMatchingBytesAndSamples) {
    const auto [kind, agent_role] = GetParam();
    asio::io_context ioc;
    provider prov(ioc);
    auto agent = base_params(kind, agent_role, 11);
    prov.accepted = base_params(kind, other(agent_role), 12);
    prov.accepted->info_hash = agent.info_hash;
    // The provider's params say bt; the handshake decides the kind.
    prov.accepted->kind = diff::flow_kind::bt;

    flow_report a;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        a = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), agent);
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.reports.empty(); }, 10s));
    });
    ASSERT_EQ(prov.reports.size(), 1u);
    const flow_report& p = prov.reports[0];

    EXPECT_EQ(a.end, flow_end::completed) << a.detail;
    EXPECT_EQ(p.end, flow_end::completed) << p.detail;
    EXPECT_EQ(a.kind, kind);
    EXPECT_EQ(p.kind, kind);
    EXPECT_EQ(p.role, other(agent_role));
    ASSERT_EQ(prov.requests.size(), 1u);
    EXPECT_EQ(prov.requests[0].kind, kind);
    EXPECT_EQ(prov.requests[0].info_hash, agent.info_hash);

    // Nothing lost or invented between the two ends.
    EXPECT_EQ(a.bytes_sent, p.bytes_received);
    EXPECT_EQ(a.bytes_received, p.bytes_sent);
    EXPECT_EQ(a.payload_bytes, p.payload_bytes);
    EXPECT_EQ(a.resets_received + a.resets_sent + p.resets_received + p.resets_sent, 0u);
    EXPECT_GT(a.connect_time.count(), 0);

    const flow_report& leecher = agent_role == flow_role::leech ? a : p;
    const flow_report& seeder = agent_role == flow_role::leech ? p : a;
    EXPECT_TRUE(seeder.samples.empty());
    // About 100 samples of duration / 100 (10 x min RTT is far below 10 ms on loopback).
    EXPECT_GE(leecher.samples.size(), 50u);
    EXPECT_LE(leecher.samples.size(), 100u);
    EXPECT_GE(leecher.sample_interval * static_cast<long>(leecher.samples.size()), 1s);
    std::uint64_t sum = 0;
    std::size_t nonzero = 0;
    for (auto s : leecher.samples) {
        sum += s;
        nonzero += s > 0;
    }
    EXPECT_EQ(sum, leecher.window_bytes);
    // Most intervals carry data (not all: the machine running the test may be busy).
    EXPECT_GT(nonzero, leecher.samples.size() / 2) << ::testing::PrintToString(leecher.samples);
    EXPECT_GT(leecher.window_bytes, 10u * 1024 * 1024); // > 80 Mbit/s even on a busy machine
    EXPECT_LE(leecher.window_bytes, leecher.bytes_received);
    EXPECT_GE(leecher.duration, 990ms);
    EXPECT_LE(leecher.duration, 1000ms);
    EXPECT_TRUE(leecher.tcp_end.valid);
    EXPECT_FALSE(leecher.congestion_control.empty());
}

INSTANTIATE_TEST_SUITE_P(KindsAndRoles, FlowPair,
                         ::testing::Combine(::testing::Values(diff::flow_kind::bt,
                                                              diff::flow_kind::control),
                                            ::testing::Values(flow_role::leech, flow_role::seed)),
                         [](const auto& param_info) {
                             return std::string{proto::to_string(std::get<0>(param_info.param))} +
                                    "_agent_" +
                                    std::string{to_string(std::get<1>(param_info.param))};
                         });

// ---- The control flow is the bit inverse of the BT flow ----

TEST(Flow, ControlBytesAreTheInverseOfBtBytes) {
    std::vector<flow_report> agents;
    for (diff::flow_kind kind : {diff::flow_kind::bt, diff::flow_kind::control}) {
        asio::io_context ioc;
        provider prov(ioc);
        auto agent = base_params(kind, flow_role::leech, 21);
        agent.duration = 300ms;
        agent.capture_bytes = 1 << 20;
        prov.accepted = base_params(kind, flow_role::seed, 22);
        prov.accepted->info_hash = agent.info_hash;
        flow_report a;
        run_test(ioc, [&]() -> asio::awaitable<void> {
            a = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), agent);
        });
        ASSERT_EQ(a.end, flow_end::completed) << a.detail;
        agents.push_back(std::move(a));
    }
    const auto& bt = agents[0];
    const auto& ctl = agents[1];
    // Both directions: what the agent sent (handshake, interested, requests) and what the
    // provider sent (handshake, bitfield, unchoke, pieces).
    for (auto member : {&flow_report::captured_sent, &flow_report::captured_received}) {
        const bytes& b = bt.*member;
        const bytes& c = ctl.*member;
        const std::size_t n = std::min(b.size(), c.size());
        ASSERT_GE(n, 4096u);
        EXPECT_EQ(b[0], 0x13);
        EXPECT_EQ(c[0], 0xec);
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < n; ++i)
            mismatches += c[i] != static_cast<std::uint8_t>(~b[i]);
        EXPECT_EQ(mismatches, 0u);
    }
    EXPECT_GE(bt.captured_received.size(), 256u * 1024); // pieces were compared, not only headers
}

// ---- The test port refuses what it must, and keeps serving ----

TEST(Flow, WrongTokenIsRefusedAndTheListenerKeepsServing) {
    asio::io_context ioc;
    provider prov(ioc);
    auto good = base_params(diff::flow_kind::bt, flow_role::leech, 31);
    good.duration = 200ms;
    prov.accepted = base_params(diff::flow_kind::bt, flow_role::seed, 32);
    prov.accepted->info_hash = good.info_hash;
    auto bad = good;
    bad.info_hash = diff::info_hash_of_token(as_bytes("not a live token"));

    flow_report refused, served;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        refused = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), bad);
        served = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), good);
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.reports.empty(); }, 10s));
    });
    EXPECT_EQ(refused.end, flow_end::refused) << refused.detail;
    EXPECT_EQ(served.end, flow_end::completed) << served.detail;
    ASSERT_EQ(prov.rejections.size(), 1u);
    EXPECT_EQ(prov.rejections[0].reason, rejection_reason::token_refused);
    EXPECT_EQ(prov.reports.size(), 1u);
}

TEST(Flow, GarbageIsDroppedWithAReason) {
    asio::io_context ioc;
    provider prov(ioc);
    bool closed = false;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        tcp::socket s(ioc);
        error_code ec;
        co_await s.async_connect(prov.endpoint(), asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_FALSE(ec);
        std::string get = "GET /announce?info_hash=x HTTP/1.1\r\nHost: tracker.example\r\n\r\n";
        get.resize(diff::handshake_size, ' ');
        co_await asio::async_write(s, asio::buffer(get),
                                   asio::redirect_error(asio::use_awaitable, ec));
        char c;
        co_await s.async_read_some(asio::buffer(&c, 1),
                                   asio::redirect_error(asio::use_awaitable, ec));
        closed = ec == asio::error::eof;
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.rejections.empty(); }, 5s));
    });
    EXPECT_TRUE(closed);
    ASSERT_EQ(prov.rejections.size(), 1u);
    EXPECT_EQ(prov.rejections[0].reason, rejection_reason::not_bittorrent);
    EXPECT_NE(prov.rejections[0].detail.find("0x47"), std::string::npos)
        << prov.rejections[0].detail;
    EXPECT_TRUE(prov.requests.empty()); // the validator never saw it
}

TEST(Flow, ExcessUnauthenticatedConnectionsAreDropped) {
    asio::io_context ioc;
    test_port_config cfg;
    cfg.max_unauthenticated = 2;
    cfg.handshake_timeout = 20s; // the idle connections must outlive the test's checks
    provider prov(ioc, cfg);
    auto good = base_params(diff::flow_kind::control, flow_role::leech, 41);
    good.duration = 200ms;
    prov.accepted = base_params(diff::flow_kind::control, flow_role::seed, 42);
    prov.accepted->info_hash = good.info_hash;

    flow_report served;
    int dropped = 0;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        std::vector<tcp::socket> idle;
        for (int i = 0; i < 3; ++i) {
            idle.emplace_back(ioc);
            error_code ec;
            co_await idle.back().async_connect(prov.endpoint(),
                                               asio::redirect_error(asio::use_awaitable, ec));
            EXPECT_FALSE(ec);
        }
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.rejections.empty(); }, 5s));
        EXPECT_EQ(prov.rejections.size(), 1u);
        EXPECT_EQ(prov.rejections.at(0).reason, rejection_reason::too_many_unauthenticated);
        EXPECT_EQ(prov.listener->stats().excess_dropped, 1u);
        EXPECT_EQ(prov.listener->stats().unauthenticated, 2u);
        // The dropped one is closed; which one it is follows the accept order.
        for (auto& s : idle) {
            error_code ec;
            s.non_blocking(true);
            char c;
            s.read_some(asio::buffer(&c, 1), ec);
            dropped += ec == asio::error::eof || ec == asio::error::connection_reset;
        }
        // While two connections hold the slots, a real flow is dropped too...
        auto blocked = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), good);
        EXPECT_NE(blocked.end, flow_end::completed);
        // ...and once they go, the port serves again.
        for (auto& s : idle)
            s.close();
        EXPECT_TRUE(co_await prov.changed.wait(
            [&] { return prov.listener->stats().unauthenticated == 0; }, 5s));
        served = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), good);
    });
    EXPECT_EQ(dropped, 1);
    EXPECT_EQ(served.end, flow_end::completed) << served.detail;
    EXPECT_EQ(prov.listener->stats().excess_dropped, 2u);
}

TEST(Flow, SilentConnectionTimesOut) {
    asio::io_context ioc;
    test_port_config cfg;
    cfg.handshake_timeout = 200ms;
    provider prov(ioc, cfg);
    run_test(ioc, [&]() -> asio::awaitable<void> {
        tcp::socket s(ioc);
        error_code ec;
        co_await s.async_connect(prov.endpoint(), asio::redirect_error(asio::use_awaitable, ec));
        const std::array<std::uint8_t, 10> partial{0x13, 'B', 'i', 't'};
        co_await asio::async_write(s, asio::buffer(partial),
                                   asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.rejections.empty(); }, 5s));
    });
    ASSERT_EQ(prov.rejections.size(), 1u);
    EXPECT_EQ(prov.rejections[0].reason, rejection_reason::handshake_timeout);
}

TEST(Flow, NobodyListeningIsConnectFailed) {
    asio::io_context ioc;
    tcp::endpoint closed_port;
    {
        tcp::acceptor a(ioc, loopback);
        closed_port = a.local_endpoint();
    }
    flow_report r;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        r = co_await run_agent_flow(ioc.get_executor(), closed_port,
                                    base_params(diff::flow_kind::bt, flow_role::leech, 51));
    });
    EXPECT_EQ(r.end, flow_end::connect_failed) << r.detail;
}

// ---- Misbehaving peers, written by hand with the codec ----

enum class misbehaviour { stall_after_unchoke, reset_after_pieces };

// A provider that handshakes and unchokes like a seeder, then misbehaves.
asio::awaitable<void> bad_seeder(tcp::acceptor& acceptor, misbehaviour how, diff::flow_kind kind) {
    error_code ec;
    tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return;
    diff::handshake_bytes theirs{};
    co_await asio::async_read(s, asio::buffer(theirs),
                              asio::redirect_error(asio::use_awaitable, ec));
    auto hs = diff::classify_handshake(theirs);
    if (!hs)
        co_return;
    diff::handshake ours;
    ours.info_hash = hs->hs.info_hash;
    const auto hb = diff::encode_handshake(ours, kind);
    bytes out(hb.begin(), hb.end());
    diff::append_bitfield(out, bytes(1024, 0xff), kind);
    diff::append_simple(out, diff::message_id::unchoke, kind);
    if (how == misbehaviour::reset_after_pieces) {
        for (std::uint32_t i = 0; i < 4; ++i)
            diff::append_piece(out, 0, i * diff::block_size, bytes(diff::block_size, 0x55), kind);
    }
    co_await asio::async_write(s, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    if (how == misbehaviour::reset_after_pieces) {
        // Wait for the agent's requests so that it is mid-transfer, then abort the connection.
        std::array<std::uint8_t, 64> buf;
        co_await asio::async_read(s, asio::buffer(buf),
                                  asio::redirect_error(asio::use_awaitable, ec));
        s.set_option(asio::socket_base::linger(true, 0), ec);
        s.close(ec);
        co_return;
    }
    // Stall: read and ignore everything until the agent gives up.
    std::array<std::uint8_t, 4096> buf;
    for (;;) {
        co_await s.async_read_some(asio::buffer(buf),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return;
    }
}

TEST(Flow, PeerThatStallsEndsAsStalled) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, loopback);
    auto agent = base_params(diff::flow_kind::bt, flow_role::leech, 61);
    agent.duration = 10s;
    agent.stall_timeout = 300ms;
    flow_report r;
    asio::co_spawn(ioc, bad_seeder(acceptor, misbehaviour::stall_after_unchoke, agent.kind),
                   [](std::exception_ptr) {});
    const auto start = std::chrono::steady_clock::now();
    run_test(ioc, [&]() -> asio::awaitable<void> {
        r = co_await run_agent_flow(ioc.get_executor(), acceptor.local_endpoint(), agent);
        acceptor.close();
    });
    EXPECT_EQ(r.end, flow_end::stalled) << r.detail;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_EQ(r.payload_bytes, 0u);
    EXPECT_EQ(r.resets_received, 0u);
}

TEST(Flow, PeerThatResetsEndsAsResetReceived) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, loopback);
    auto agent = base_params(diff::flow_kind::control, flow_role::leech, 71);
    agent.duration = 10s;
    flow_report r;
    asio::co_spawn(ioc, bad_seeder(acceptor, misbehaviour::reset_after_pieces, agent.kind),
                   [](std::exception_ptr) {});
    run_test(ioc, [&]() -> asio::awaitable<void> {
        r = co_await run_agent_flow(ioc.get_executor(), acceptor.local_endpoint(), agent);
    });
    EXPECT_EQ(r.end, flow_end::reset_received) << r.detail;
    EXPECT_GE(r.resets_received, 1u);
    EXPECT_EQ(r.resets_sent, 0u);
    EXPECT_LE(r.payload_bytes, 4u * diff::block_size);
}

// An agent that handshakes with a live token and then resets: the provider's report says so.
TEST(Flow, ProviderSeesAgentReset) {
    asio::io_context ioc;
    provider prov(ioc);
    auto agent = base_params(diff::flow_kind::bt, flow_role::leech, 81);
    prov.accepted = base_params(diff::flow_kind::bt, flow_role::seed, 82);
    prov.accepted->info_hash = agent.info_hash;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        tcp::socket s(ioc);
        error_code ec;
        co_await s.async_connect(prov.endpoint(), asio::redirect_error(asio::use_awaitable, ec));
        diff::handshake ours;
        ours.info_hash = agent.info_hash;
        const auto hb = diff::encode_handshake(ours, agent.kind);
        bytes out(hb.begin(), hb.end());
        diff::append_simple(out, diff::message_id::interested, agent.kind);
        for (std::uint32_t i = 0; i < 8; ++i)
            diff::append_request(out, 0, i * diff::block_size, diff::block_size, agent.kind);
        co_await asio::async_write(s, asio::buffer(out),
                                   asio::redirect_error(asio::use_awaitable, ec));
        // Handshake + bitfield + unchoke + first piece, then abort.
        std::vector<std::uint8_t> in(diff::handshake_size + 1029 + 5 + 13 + diff::block_size);
        co_await asio::async_read(s, asio::buffer(in),
                                  asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_FALSE(ec);
        s.set_option(asio::socket_base::linger(true, 0), ec);
        s.close(ec);
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.reports.empty(); }, 10s));
    });
    ASSERT_EQ(prov.reports.size(), 1u);
    EXPECT_EQ(prov.reports[0].end, flow_end::reset_received) << prov.reports[0].detail;
    EXPECT_GE(prov.reports[0].resets_received, 1u);
}

TEST(Flow, CongestionControlIsAppliedAndReported) {
    asio::io_context ioc;
    provider prov(ioc);
    auto agent = base_params(diff::flow_kind::bt, flow_role::seed, 91);
    agent.duration = 200ms;
    agent.congestion_control = "reno";
    prov.accepted = base_params(diff::flow_kind::bt, flow_role::leech, 92);
    prov.accepted->info_hash = agent.info_hash;
    flow_report a;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        a = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), agent);
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.reports.empty(); }, 10s));
    });
    EXPECT_EQ(a.end, flow_end::completed) << a.detail;
    EXPECT_EQ(a.congestion_control, "reno");

    auto bogus = agent;
    bogus.congestion_control = "no-such-cc";
    flow_report b;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        b = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), bogus);
    });
    EXPECT_EQ(b.end, flow_end::error);
    EXPECT_NE(b.detail.find("no-such-cc"), std::string::npos) << b.detail;
}

// One BT flow on loopback with both ends' seeds paced at 20 Mbit/s, the agent as `agent_role`:
// the seed's report and the leech's.
struct paced_flow {
    flow_report seed;
    flow_report leech;
};
paced_flow run_paced_flow(flow_role agent_role, std::chrono::milliseconds duration,
                          std::uint64_t agent_seed) {
    asio::io_context ioc;
    provider prov(ioc);
    auto agent = base_params(diff::flow_kind::bt, agent_role, agent_seed);
    agent.duration = duration;
    prov.accepted = base_params(diff::flow_kind::bt, other(agent_role), agent_seed + 1);
    prov.accepted->duration = duration;
    prov.accepted->info_hash = agent.info_hash;
    // Both ends are told; only the seed applies it.
    agent.max_rate_bps = 20'000'000;
    prov.accepted->max_rate_bps = 20'000'000;
    flow_report a;
    run_test(ioc, [&]() -> asio::awaitable<void> {
        a = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), agent);
        EXPECT_TRUE(co_await prov.changed.wait([&] { return !prov.reports.empty(); }, 10s));
    });
    EXPECT_EQ(prov.reports.size(), 1u);
    const flow_report p = prov.reports.empty() ? flow_report{} : prov.reports.front();
    return agent_role == flow_role::seed ? paced_flow{a, p} : paced_flow{p, a};
}

// The seeds' pacing cap (the test's byte budget on fast paths) holds on loopback, which would
// otherwise carry gigabits, whichever end seeds.
TEST(Flow, ASeedPacesAtItsMaxRate) {
    for (flow_role agent_role : {flow_role::seed, flow_role::leech}) {
        const paced_flow f = run_paced_flow(agent_role, 2500ms, 93);
        const flow_report& leech = f.leech;
        ASSERT_EQ(leech.end, flow_end::completed) << leech.detail;
        ASSERT_GT(leech.duration.count(), 0);
        const double mbps = static_cast<double>(leech.window_bytes) * 8.0 /
                            static_cast<double>(leech.duration.count());
        EXPECT_LT(mbps, 22.0) << "agent " << to_string(agent_role) << " window "
                              << leech.window_bytes << " B in " << leech.duration.count()
                              << " us, sent " << f.seed.bytes_sent;
        EXPECT_GT(mbps, 10.0) << "agent " << to_string(agent_role);
    }
}

// The graceful end leaves nothing of a flow on the path once either end reports it: the leecher
// closes its write side only after every block it asked for arrived, so the seeder, which learns
// of the end from that EOF, has had all it sent acknowledged. Paced at 20 Mbit/s, the pipeline
// holds about 50 KB at the deadline: a seeder that stopped at the leecher's first word would
// report with that much still in its socket, and the next slot of a test would start behind it.
TEST(Flow, NothingIsLeftOnThePathWhenASeedReportsItsFlowDone) {
    for (flow_role agent_role : {flow_role::seed, flow_role::leech}) {
        const paced_flow f = run_paced_flow(agent_role, 1000ms, 95);
        const flow_report& seed = f.seed;
        const flow_report& leech = f.leech;
        ASSERT_EQ(seed.end, flow_end::completed) << seed.detail;
        ASSERT_EQ(leech.end, flow_end::completed) << leech.detail;
        ASSERT_TRUE(seed.tcp_end.valid);
        EXPECT_GT(seed.bytes_sent, 1'000'000u);
        EXPECT_GE(seed.tcp_end.bytes_acked, seed.bytes_sent)
            << "agent " << to_string(agent_role) << ": "
            << seed.bytes_sent - std::min(seed.bytes_sent, seed.tcp_end.bytes_acked)
            << " bytes not yet delivered when the seed reported";
        EXPECT_EQ(leech.bytes_received, seed.bytes_sent);
        EXPECT_EQ(seed.resets_sent + leech.resets_sent, 0u);
    }
}

// Polls `pred` every few milliseconds until it holds or `limit` passes; returns pred().
asio::awaitable<bool> poll_until(asio::io_context& ioc, std::function<bool()> pred,
                                 std::chrono::milliseconds limit) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    asio::steady_timer tick(ioc);
    while (!pred() && std::chrono::steady_clock::now() < give_up) {
        tick.expires_after(5ms);
        error_code ec;
        co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return pred();
}

// The node's shutdown relies on this: after stop(), nothing the listener started keeps the
// io_context busy, whatever its connections were doing (a silent one, a partial handshake, a
// running flow), and every one of them is closed.
TEST(Flow, StopEndsEveryConnectionAndLetsTheContextRunOut) {
    asio::io_context ioc;
    test_port_config cfg;
    cfg.handshake_timeout = 60s; // far beyond the test: only stop() may end them
    provider prov(ioc, cfg);
    auto agent = base_params(diff::flow_kind::bt, flow_role::leech, 101);
    agent.duration = 20s;
    prov.accepted = base_params(diff::flow_kind::bt, flow_role::seed, 102);
    prov.accepted->info_hash = agent.info_hash;
    prov.accepted->duration = agent.duration;

    tcp::socket silent(ioc);
    tcp::socket partial(ioc);
    std::optional<flow_report> flow;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            flow = co_await run_agent_flow(ioc.get_executor(), prov.endpoint(), agent);
        },
        [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    run_test(ioc, [&]() -> asio::awaitable<void> {
        error_code ec;
        co_await silent.async_connect(prov.endpoint(),
                                      asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_FALSE(ec);
        co_await partial.async_connect(prov.endpoint(),
                                       asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_FALSE(ec);
        const std::string some = std::string(1, '\x13') + "BitTorrent protocol";
        co_await asio::async_write(partial, asio::buffer(some),
                                   asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_FALSE(ec);
        EXPECT_TRUE(co_await poll_until(
            ioc,
            [&] {
                const auto st = prov.listener->stats();
                return st.running == 1 && st.unauthenticated == 2;
            },
            10s));
    });
    ASSERT_EQ(prov.listener->stats().running, 1u);
    ASSERT_EQ(prov.listener->stats().unauthenticated, 2u);

    prov.listener->stop();
    ioc.restart();
    const auto t0 = std::chrono::steady_clock::now();
    ioc.run_for(10s);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(ioc.stopped()) << "the io_context still had work 10 s after stop()";
    EXPECT_LT(took, 2s);
    ASSERT_TRUE(flow.has_value()) << "the agent's flow did not end";
    EXPECT_NE(flow->end, flow_end::completed) << flow->detail;
    EXPECT_TRUE(prov.reports.empty()); // no callback after stop()
    for (tcp::socket* s : {&silent, &partial}) {
        char c;
        error_code ec;
        s->read_some(asio::buffer(&c, 1), ec);
        EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    }
}

} // namespace
} // namespace glasnode::node
