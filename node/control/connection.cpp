#include "node/control/connection.hpp"

#include "node/endpoint.hpp"

namespace glasnode::node {
namespace {

std::string endpoint_string(const tcp::socket& s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    return ec ? "?" : to_string(ep);
}

} // namespace

std::shared_ptr<control_connection> control_connection::create(tcp::socket socket,
                                                               overlay::channel_role role,
                                                               const overlay::identity& self,
                                                               random_source& rng,
                                                               connection_options options) {
    return std::shared_ptr<control_connection>(
        new control_connection(std::move(socket), role, self, rng, options));
}

control_connection::control_connection(tcp::socket socket, overlay::channel_role role,
                                       const overlay::identity& self, random_source& rng,
                                       connection_options options)
    : m_socket(std::move(socket)), m_timer(m_socket.get_executor()), m_options(options),
      m_channel(role, self, rng, options.limits), m_remote(endpoint_string(m_socket)) {}

control_connection::~control_connection() { close(); }

void control_connection::arm(std::chrono::milliseconds timeout) {
    const std::uint64_t generation = ++m_generation;
    m_timed_out = false;
    m_timer.expires_after(timeout);
    m_timer.async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
        auto self = weak.lock();
        if (ec || !self || self->m_generation != generation) return;
        self->m_timed_out = true;
        boost::system::error_code ignored;
        self->m_socket.cancel(ignored);
    });
}

void control_connection::disarm() {
    ++m_generation;
    m_timer.cancel();
}

void control_connection::close() noexcept {
    ++m_generation;
    boost::system::error_code ignored;
    m_timer.cancel();
    if (m_socket.is_open()) {
        m_socket.shutdown(tcp::socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }
}

error control_connection::io_failure(const boost::system::error_code& ec,
                                     std::string_view what) const {
    if (m_timed_out) return make_error(errc::timeout, std::string(what) + " timed out");
    if (ec == asio::error::eof) return make_error(errc::closed, "peer closed the connection");
    if (ec == asio::error::connection_reset)
        return make_error(errc::closed, "connection reset by peer");
    if (ec == asio::error::operation_aborted)
        return make_error(errc::closed, std::string(what) + " cancelled");
    return make_error(errc::io_error, std::string(what) + ": " + ec.message());
}

asio::awaitable<status> control_connection::connect(const tcp::endpoint& to) {
    boost::system::error_code ec;
    if (!m_socket.is_open()) {
        m_socket.open(to.protocol(), ec);
        if (ec) co_return io_failure(ec, "socket");
    }
    arm(m_options.connect_timeout);
    co_await m_socket.async_connect(to, asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) co_return io_failure(ec, "connect");
    m_socket.set_option(tcp::no_delay(true), ec);
    m_remote = endpoint_string(m_socket);
    co_return status{};
}

asio::awaitable<status> control_connection::flush() {
    bytes out = m_channel.take_output();
    if (out.empty()) co_return status{};
    boost::system::error_code ec;
    arm(m_options.write_timeout);
    co_await asio::async_write(m_socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) co_return io_failure(ec, "write");
    co_return status{};
}

asio::awaitable<status> control_connection::read_more(clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return make_error(errc::timeout, "read timed out");
    boost::system::error_code ec;
    arm(left);
    const std::size_t n = co_await m_socket.async_read_some(
        asio::buffer(m_buffer), asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) co_return io_failure(ec, "read");
    co_return m_channel.receive(byte_view(m_buffer.data(), n));
}

asio::awaitable<status> control_connection::handshake() {
    const auto deadline = clock::now() + m_options.handshake_timeout;
    while (!m_channel.established()) {
        if (auto st = co_await flush(); !st) co_return st;
        if (auto st = co_await read_more(deadline); !st) {
            if (st.err().code != errc::timeout) co_return st;
            co_return make_error(errc::timeout,
                                 "handshake not completed within " +
                                     std::to_string(m_options.handshake_timeout.count()) + " ms");
        }
    }
    m_peer = m_channel.peer();
    co_return co_await flush();
}

asio::awaitable<result<bytes>> control_connection::receive(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (auto m = m_channel.next_message()) co_return std::move(*m);
        if (m_channel.failed()) co_return m_channel.failure();
        if (auto st = co_await read_more(deadline); !st) {
            if (st.err().code != errc::timeout) co_return st.err();
            co_return make_error(errc::timeout,
                                 "no message within " + std::to_string(timeout.count()) + " ms");
        }
    }
}

asio::awaitable<status> control_connection::send(byte_view message) {
    if (auto st = m_channel.send(message); !st) co_return st;
    co_return co_await flush();
}

asio::awaitable<result<std::shared_ptr<control_connection>>>
dial_control(asio::any_io_executor ex, tcp::endpoint to, const overlay::identity& self,
             random_source& rng, const overlay::public_key* expected_peer,
             connection_options options) {
    auto conn = control_connection::create(tcp::socket(ex), overlay::channel_role::initiator,
                                           self, rng, options);
    if (expected_peer) conn->expect_peer(*expected_peer);
    if (auto st = co_await conn->connect(to); !st) co_return st.err();
    if (auto st = co_await conn->handshake(); !st) {
        conn->close();
        co_return st.err();
    }
    co_return conn;
}

} // namespace glasnode::node
