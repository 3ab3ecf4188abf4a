// The control port over real TCP on loopback: handshake, messages, and peers that misbehave.
// Every misbehaving peer must be dropped with a logged reason while the node's other
// connections carry on.

#include <optional>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "node/asio.hpp"
#include "node/control/dispatcher.hpp"
#include "node/control/server.hpp"
#include "overlay/channel/secure_channel.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/frame.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/scripted_initiator.hpp"

namespace glasnode::node {
namespace {

using asio::use_awaitable;
using overlay::channel_role;
using overlay::identity;
using overlay::secure_channel;

using test_support::run;

// A peer driving the channel core by hand, so tests can tamper with what goes on the wire.
struct raw_peer {
    tcp::socket socket;
    std::unique_ptr<secure_channel> channel;
    bytes sent; // every byte written so far
};

asio::awaitable<void> write_all(tcp::socket& s, const bytes& b) {
    co_await asio::async_write(s, asio::buffer(b), use_awaitable);
}

asio::awaitable<raw_peer> raw_handshake(tcp::endpoint ep, const identity& self,
                                        random_source& rng) {
    // (co_await kept out of the aggregate initialiser: g++ 12 miscompiles that form.)
    auto ex = co_await asio::this_coro::executor;
    raw_peer p{
        tcp::socket(ex), std::make_unique<secure_channel>(channel_role::initiator, self, rng), {}};
    co_await p.socket.async_connect(ep, use_awaitable);
    std::array<std::uint8_t, 4096> buf{};
    while (!p.channel->established()) {
        bytes out = p.channel->take_output();
        p.sent.insert(p.sent.end(), out.begin(), out.end());
        co_await write_all(p.socket, out);
        const std::size_t n = co_await p.socket.async_read_some(asio::buffer(buf), use_awaitable);
        if (!p.channel->receive(byte_view(buf.data(), n)))
            throw std::runtime_error("raw handshake failed: " + p.channel->failure().describe());
    }
    bytes out = p.channel->take_output();
    p.sent.insert(p.sent.end(), out.begin(), out.end());
    co_await write_all(p.socket, out);
    co_return p;
}

// Reads until the server closes the socket; true if it did (EOF or reset) within the timeout.
asio::awaitable<bool> wait_closed(tcp::socket& s, std::chrono::milliseconds timeout) {
    asio::steady_timer t(s.get_executor());
    t.expires_after(timeout);
    bool timed_out = false;
    t.async_wait([&](boost::system::error_code ec) {
        if (!ec) {
            timed_out = true;
            s.cancel();
        }
    });
    std::array<std::uint8_t, 4096> buf{};
    boost::system::error_code ec;
    while (!ec)
        co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    t.cancel();
    co_return !timed_out;
}

class control_port : public ::testing::Test {
protected:
    control_port()
        : m_server_rng(1), m_client_rng(2), m_server_id(identity::generate(m_server_rng)),
          m_client_id(identity::generate(m_client_rng)) {}

    void SetUp() override {
        m_log_sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(m_log);
        m_previous_logger = spdlog::default_logger();
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", m_log_sink));
        m_routes.on<wire::ping>([](control_connection& c, wire::ping p) -> asio::awaitable<status> {
            co_return co_await c.send(wire::encode_message(wire::pong{p.nonce}));
        });
        start_server({});
    }

    void TearDown() override {
        m_server.reset();
        io.restart();
        io.poll();
        spdlog::set_default_logger(m_previous_logger);
    }

    void start_server(control_server_options options) {
        if (m_server)
            m_server->stop();
        m_server = std::make_unique<control_server>(
            io.get_executor(), m_server_id, m_server_rng, options,
            [this](control_connection& c, bytes m) { return m_routes(c, std::move(m)); });
        m_server->on_closed([this](const close_event& e) { m_closed.push_back(e); });
        auto ep = m_server->listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        ASSERT_TRUE(ep) << ep.err().describe();
        m_endpoint = *ep;
        m_server->start();
    }

    // A good client pings and gets its nonce back.
    asio::awaitable<bool> ping(control_connection& c, std::uint64_t nonce) {
        if (!co_await c.send(wire::encode_message(wire::ping{nonce})))
            co_return false;
        auto reply = co_await c.receive(std::chrono::seconds(5));
        if (!reply)
            co_return false;
        auto pong = wire::decode_message<wire::pong>(*reply);
        co_return pong && pong->nonce == nonce;
    }

    std::shared_ptr<control_connection> dial_good_client() {
        auto conn = run(io, dial_control(io.get_executor(), m_endpoint, m_client_id, m_client_rng,
                                         &m_server_id.key()));
        if (!conn)
            throw std::runtime_error(conn.err().describe());
        return *conn;
    }

    const close_event* last_drop() const { return m_closed.empty() ? nullptr : &m_closed.back(); }

    asio::io_context io{1};
    seeded_random m_server_rng;
    seeded_random m_client_rng;
    identity m_server_id;
    identity m_client_id;
    dispatcher m_routes;
    std::unique_ptr<control_server> m_server;
    tcp::endpoint m_endpoint;
    std::vector<close_event> m_closed;
    std::ostringstream m_log;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> m_log_sink;
    std::shared_ptr<spdlog::logger> m_previous_logger;
};

TEST_F(control_port, two_nodes_authenticate_and_exchange_messages) {
    auto conn = dial_good_client();
    EXPECT_EQ(conn->peer(), m_server_id.key());
    for (std::uint64_t nonce : {1ull, 42ull, ~0ull})
        EXPECT_TRUE(run(io, ping(*conn, nonce)));
    EXPECT_EQ(m_server->active_connections(), 1u);
    EXPECT_NE(m_log.str().find("authenticated as"), std::string::npos);
}

TEST_F(control_port, wrong_expected_key_fails_the_dial) {
    seeded_random other_rng(99);
    const identity other = identity::generate(other_rng);
    auto conn = run(
        io, dial_control(io.get_executor(), m_endpoint, m_client_id, m_client_rng, &other.key()));
    ASSERT_FALSE(conn);
    EXPECT_EQ(conn.err().code, errc::auth_failed) << conn.err().describe();
}

TEST_F(control_port, flipped_byte_in_a_frame_drops_only_that_peer) {
    auto good = dial_good_client();
    for (std::size_t flip_at : {std::size_t{0}, std::size_t{5}, std::size_t{20}}) {
        const std::size_t drops_before = m_closed.size();
        const bool closed = run(io, [&]() -> asio::awaitable<bool> {
            seeded_random rng(1000 + flip_at);
            const identity attacker = identity::generate(rng);
            raw_peer p = co_await raw_handshake(m_endpoint, attacker, rng);
            EXPECT_TRUE(p.channel->send(wire::encode_message(wire::ping{7})));
            bytes frame = p.channel->take_output();
            // Keep the length prefix intact: the ciphertext or tag is what gets altered.
            frame.at(wire::frame_header_size + flip_at) ^= 0x01;
            co_await write_all(p.socket, frame);
            co_return co_await wait_closed(p.socket, std::chrono::seconds(5));
        }());
        EXPECT_TRUE(closed) << "server kept a connection whose frame was altered";
        ASSERT_EQ(m_closed.size(), drops_before + 1);
        EXPECT_EQ(last_drop()->why.code, errc::auth_failed) << last_drop()->why.describe();
        EXPECT_TRUE(last_drop()->peer.has_value());
        EXPECT_TRUE(run(io, ping(*good, flip_at))) << "the good connection stopped working";
    }
    EXPECT_NE(m_log.str().find("dropped 127.0.0.1:"), std::string::npos) << m_log.str();
}

TEST_F(control_port, peer_presenting_a_key_it_cannot_sign_for_is_dropped) {
    auto good = dial_good_client();
    seeded_random mallory_rng(77);
    const identity mallory = identity::generate(mallory_rng);
    const std::size_t drops_before = m_closed.size();
    const bool closed = run(io, [&]() -> asio::awaitable<bool> {
        auto ex = co_await asio::this_coro::executor;
        tcp::socket s(ex);
        co_await s.async_connect(m_endpoint, use_awaitable);
        // Mallory claims the good client's key but can only sign with her own.
        test_support::scripted_initiator liar(m_client_id.key());
        co_await write_all(s, liar.hello_frame());
        wire::frame_decoder frames_in(1 << 16);
        std::vector<bytes> frames;
        std::array<std::uint8_t, 4096> buf{};
        while (frames.empty()) {
            const std::size_t n = co_await s.async_read_some(asio::buffer(buf), use_awaitable);
            EXPECT_TRUE(frames_in.feed(byte_view(buf.data(), n), frames));
        }
        co_await write_all(s, liar.auth_frame(frames.front(), mallory));
        co_return co_await wait_closed(s, std::chrono::seconds(5));
    }());
    EXPECT_TRUE(closed);
    ASSERT_EQ(m_closed.size(), drops_before + 1);
    EXPECT_EQ(last_drop()->why.code, errc::auth_failed) << last_drop()->why.describe();
    EXPECT_NE(last_drop()->why.reason.find("does not verify"), std::string::npos)
        << last_drop()->why.reason;
    EXPECT_FALSE(last_drop()->peer.has_value()) << "an impersonator must never authenticate";
    EXPECT_NE(m_log.str().find("does not verify"), std::string::npos) << m_log.str();
    EXPECT_TRUE(run(io, ping(*good, 9)));
}

TEST_F(control_port, replayed_frame_is_rejected) {
    auto good = dial_good_client();
    const bool closed = run(io, [&]() -> asio::awaitable<bool> {
        raw_peer p = co_await raw_handshake(m_endpoint, m_client_id, m_client_rng);
        EXPECT_TRUE(p.channel->send(wire::encode_message(wire::ping{1})));
        const bytes frame = p.channel->take_output();
        co_await write_all(p.socket, frame);
        std::array<std::uint8_t, 4096> buf{};
        std::size_t n = co_await p.socket.async_read_some(asio::buffer(buf), use_awaitable);
        EXPECT_TRUE(p.channel->receive(byte_view(buf.data(), n)));
        EXPECT_TRUE(p.channel->next_message().has_value()); // the pong
        co_await write_all(p.socket, frame);                // the same frame again
        co_return co_await wait_closed(p.socket, std::chrono::seconds(5));
    }());
    EXPECT_TRUE(closed);
    ASSERT_FALSE(m_closed.empty());
    EXPECT_EQ(last_drop()->why.code, errc::auth_failed) << last_drop()->why.describe();
    EXPECT_TRUE(run(io, ping(*good, 5)));
}

TEST_F(control_port, replayed_handshake_is_rejected) {
    auto good = dial_good_client();
    // Record a complete, valid handshake of a real client...
    bytes recorded = run(io, [&]() -> asio::awaitable<bytes> {
        raw_peer p = co_await raw_handshake(m_endpoint, m_client_id, m_client_rng);
        EXPECT_TRUE(p.channel->send(wire::encode_message(wire::ping{3})));
        bytes out = p.channel->take_output();
        p.sent.insert(p.sent.end(), out.begin(), out.end());
        co_await write_all(p.socket, out);
        co_return p.sent;
    }());
    const std::size_t drops_before = m_closed.size();
    // ...and play it back on a new connection, as an eavesdropper would.
    const bool closed = run(io, [&]() -> asio::awaitable<bool> {
        tcp::socket s(co_await asio::this_coro::executor);
        co_await s.async_connect(m_endpoint, use_awaitable);
        co_await write_all(s, recorded);
        co_return co_await wait_closed(s, std::chrono::seconds(5));
    }());
    EXPECT_TRUE(closed);
    ASSERT_GT(m_closed.size(), drops_before);
    EXPECT_EQ(last_drop()->why.code, errc::auth_failed) << last_drop()->why.describe();
    EXPECT_FALSE(last_drop()->peer.has_value()) << "a replayed handshake must never authenticate";
    EXPECT_TRUE(run(io, ping(*good, 6)));
}

TEST_F(control_port, oversized_frame_and_garbage_are_dropped) {
    auto good = dial_good_client();
    const bool closed = run(io, [&]() -> asio::awaitable<bool> {
        tcp::socket s(co_await asio::this_coro::executor);
        co_await s.async_connect(m_endpoint, use_awaitable);
        const bytes huge_length{0xff, 0xff, 0xff, 0xff, 'x', 'y'};
        co_await write_all(s, huge_length);
        co_return co_await wait_closed(s, std::chrono::seconds(5));
    }());
    EXPECT_TRUE(closed);
    ASSERT_FALSE(m_closed.empty());
    EXPECT_EQ(last_drop()->why.code, errc::limit_exceeded) << last_drop()->why.describe();

    const bool closed2 = run(io, [&]() -> asio::awaitable<bool> {
        tcp::socket s(co_await asio::this_coro::executor);
        co_await s.async_connect(m_endpoint, use_awaitable);
        bytes junk;
        wire::append_frame(junk, as_bytes("GET / HTTP/1.1\r\n\r\n"));
        co_await write_all(s, junk);
        co_return co_await wait_closed(s, std::chrono::seconds(5));
    }());
    EXPECT_TRUE(closed2);
    EXPECT_EQ(last_drop()->why.code, errc::protocol_error) << last_drop()->why.describe();
    EXPECT_TRUE(run(io, ping(*good, 8)));
}

TEST_F(control_port, silent_peer_is_dropped_at_the_handshake_deadline) {
    control_server_options o;
    o.connection.handshake_timeout = std::chrono::milliseconds(300);
    start_server(o);
    const bool closed = run(io, [&]() -> asio::awaitable<bool> {
        tcp::socket s(co_await asio::this_coro::executor);
        co_await s.async_connect(m_endpoint, use_awaitable);
        co_return co_await wait_closed(s, std::chrono::seconds(10));
    }());
    EXPECT_TRUE(closed);
    ASSERT_FALSE(m_closed.empty());
    EXPECT_EQ(last_drop()->why.code, errc::timeout) << last_drop()->why.describe();
}

TEST_F(control_port, unexpected_message_gets_an_error_then_close) {
    const bool got_error_then_close = run(io, [&]() -> asio::awaitable<bool> {
        raw_peer p = co_await raw_handshake(m_endpoint, m_client_id, m_client_rng);
        EXPECT_TRUE(p.channel->send(wire::encode_message(wire::pong{1})));
        co_await write_all(p.socket, p.channel->take_output());
        std::array<std::uint8_t, 4096> buf{};
        boost::system::error_code ec;
        std::optional<bytes> reply;
        while (!ec && !reply) {
            const std::size_t n = co_await p.socket.async_read_some(
                asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
            if (n > 0) {
                EXPECT_TRUE(p.channel->receive(byte_view(buf.data(), n)));
            }
            reply = p.channel->next_message();
        }
        if (!reply)
            co_return false;
        auto e = wire::decode_message<wire::error_message>(*reply);
        EXPECT_TRUE(e) << (e ? "" : e.err().describe());
        if (e) {
            EXPECT_NE(e->reason.find("unexpected message pong"), std::string::npos);
        }
        co_return co_await wait_closed(p.socket, std::chrono::seconds(5));
    }());
    EXPECT_TRUE(got_error_then_close);
}

TEST_F(control_port, connections_over_the_limit_are_refused) {
    control_server_options o;
    o.max_connections = 2;
    start_server(o);
    auto a = dial_good_client();
    auto b = dial_good_client();
    auto c = run(io, dial_control(io.get_executor(), m_endpoint, m_client_id, m_client_rng,
                                  &m_server_id.key()));
    EXPECT_FALSE(c);
    ASSERT_FALSE(m_closed.empty());
    EXPECT_EQ(last_drop()->why.code, errc::busy);
    EXPECT_TRUE(run(io, ping(*a, 1)));
    EXPECT_TRUE(run(io, ping(*b, 2)));
    a->close();
    // Once a slot frees, a new peer gets in. The server notices the close on its next read,
    // so wait for the close event rather than for time to pass.
    for (int i = 0; i < 100 && m_server->active_connections() >= 2; ++i) {
        io.restart();
        io.run_one_for(std::chrono::seconds(5));
    }
    ASSERT_LT(m_server->active_connections(), 2u);
    auto d = dial_good_client();
    EXPECT_TRUE(run(io, ping(*d, 3)));
}

TEST(control_dispatcher, wiring_a_type_twice_is_refused_loudly) {
    auto pong_back = [](control_connection& c, wire::ping p) -> asio::awaitable<status> {
        co_return co_await c.send(wire::encode_message(wire::pong{p.nonce}));
    };
    dispatcher routes;
    // ping is a core message, already known to the registry: serving it is fine once.
    routes.on<wire::ping>(pong_back);
    EXPECT_THROW(routes.on<wire::ping>(pong_back), std::logic_error);
}

} // namespace
} // namespace glasnode::node
