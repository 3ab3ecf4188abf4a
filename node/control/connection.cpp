#include "node/control/connection.hpp"

#include <atomic>

#include "node/endpoint.hpp"

namespace glasnode::node {
namespace {

tcp::endpoint remote_of(const tcp::socket& s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    return ec ? tcp::endpoint{} : ep;
}

std::string endpoint_string(const tcp::endpoint& ep) {
    return ep == tcp::endpoint{} ? "?" : to_string(ep);
}

std::uint64_t next_connection_id() {
    static std::atomic<std::uint64_t> counter{0};
    return ++counter;
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
    : m_socket(std::move(socket)), m_read_dog(m_socket.get_executor()),
      m_write_dog(m_socket.get_executor()), m_options(options),
      m_channel(role, self, rng, options.limits), m_remote_endpoint(remote_of(m_socket)),
      m_id(next_connection_id()) {
    m_remote = endpoint_string(m_remote_endpoint);
}

control_connection::~control_connection() {
    close();
}

void control_connection::arm(watchdog control_connection::*which, clock::duration timeout) {
    watchdog& dog = this->*which;
    const std::uint64_t generation = ++dog.generation;
    dog.fired = false;
    dog.timer.expires_after(timeout);
    dog.timer.async_wait(
        [weak = weak_from_this(), which, generation](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || (self.get()->*which).generation != generation)
                return;
            (self.get()->*which).fired = true;
            self->close();
        });
}

void control_connection::disarm(watchdog& dog) {
    ++dog.generation;
    dog.timer.cancel();
}

void control_connection::close() noexcept {
    disarm(m_read_dog);
    disarm(m_write_dog);
    if (m_socket.is_open()) {
        boost::system::error_code ignored;
        m_socket.shutdown(tcp::socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }
}

error control_connection::io_failure(const boost::system::error_code& ec, std::string_view what,
                                     const watchdog& dog) const {
    if (dog.fired)
        return make_error(errc::timeout, std::string(what) + " timed out");
    if (m_write_error && &dog == &m_read_dog)
        return *m_write_error;
    if (ec == asio::error::eof)
        return make_error(errc::closed, "peer closed the connection");
    if (ec == asio::error::connection_reset)
        return make_error(errc::closed, "connection reset by peer");
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
        return make_error(errc::closed, std::string(what) + " aborted: connection closed");
    return make_error(errc::io_error, std::string(what) + ": " + ec.message());
}

asio::awaitable<status> control_connection::connect(const tcp::endpoint& to) {
    boost::system::error_code ec;
    if (!m_socket.is_open()) {
        m_socket.open(to.protocol(), ec);
        if (ec)
            co_return io_failure(ec, "socket", m_read_dog);
    }
    arm(&control_connection::m_read_dog, m_options.connect_timeout);
    co_await m_socket.async_connect(to, asio::redirect_error(asio::use_awaitable, ec));
    disarm(m_read_dog);
    if (ec)
        co_return io_failure(ec, "connect", m_read_dog);
    m_socket.set_option(tcp::no_delay(true), ec);
    m_remote_endpoint = remote_of(m_socket);
    m_remote = endpoint_string(m_remote_endpoint);
    co_return status{};
}

asio::awaitable<status> control_connection::write_queued() {
    // Only one writer at a time: later senders leave their bytes in m_queued for this loop.
    if (m_writing)
        co_return status{};
    m_writing = true;
    while (!m_queued.empty() && !m_write_error) {
        bytes out = std::exchange(m_queued, {});
        boost::system::error_code ec;
        arm(&control_connection::m_write_dog, m_options.write_timeout);
        co_await asio::async_write(m_socket, asio::buffer(out),
                                   asio::redirect_error(asio::use_awaitable, ec));
        disarm(m_write_dog);
        if (ec) {
            m_write_error = io_failure(ec, "write", m_write_dog);
            close();
        }
    }
    m_writing = false;
    if (m_write_error)
        co_return *m_write_error;
    co_return status{};
}

asio::awaitable<status> control_connection::read_more(clock::time_point deadline) {
    const auto left = deadline - clock::now();
    if (left <= clock::duration::zero())
        co_return make_error(errc::timeout, "read timed out");
    boost::system::error_code ec;
    arm(&control_connection::m_read_dog, left);
    const std::size_t n = co_await m_socket.async_read_some(
        asio::buffer(m_buffer), asio::redirect_error(asio::use_awaitable, ec));
    disarm(m_read_dog);
    if (ec)
        co_return io_failure(ec, "read", m_read_dog);
    co_return m_channel.receive(byte_view(m_buffer.data(), n));
}

asio::awaitable<status> control_connection::handshake() {
    const auto deadline = clock::now() + m_options.handshake_timeout;
    while (!m_channel.established()) {
        bytes out = m_channel.take_output();
        m_queued.insert(m_queued.end(), out.begin(), out.end());
        if (auto st = co_await write_queued(); !st)
            co_return st;
        if (auto st = co_await read_more(deadline); !st) {
            if (st.err().code != errc::timeout)
                co_return st;
            co_return make_error(errc::timeout,
                                 "handshake not completed within " +
                                     std::to_string(m_options.handshake_timeout.count()) + " ms");
        }
    }
    m_peer = m_channel.peer();
    bytes out = m_channel.take_output();
    m_queued.insert(m_queued.end(), out.begin(), out.end());
    co_return co_await write_queued();
}

asio::awaitable<result<bytes>> control_connection::receive(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (auto m = m_channel.next_message())
            co_return std::move(*m);
        if (m_channel.failed())
            co_return m_channel.failure();
        if (auto st = co_await read_more(deadline); !st) {
            if (st.err().code != errc::timeout)
                co_return st.err();
            co_return make_error(errc::timeout,
                                 "no message within " + std::to_string(timeout.count()) + " ms");
        }
    }
}

asio::awaitable<status> control_connection::send(byte_view message) {
    if (m_write_error)
        co_return *m_write_error;
    if (auto st = m_channel.send(message); !st)
        co_return st;
    bytes out = m_channel.take_output();
    if (m_queued.size() + out.size() > m_options.max_queued_output) {
        m_write_error =
            make_error(errc::limit_exceeded, "peer is not reading: more than " +
                                                 std::to_string(m_options.max_queued_output) +
                                                 " bytes queued");
        close();
        co_return *m_write_error;
    }
    m_queued.insert(m_queued.end(), out.begin(), out.end());
    co_return co_await write_queued();
}

asio::awaitable<result<std::shared_ptr<control_connection>>>
dial_control(asio::any_io_executor ex, tcp::endpoint to, const overlay::identity& self,
             random_source& rng, const overlay::public_key* expected_peer,
             connection_options options) {
    auto conn = control_connection::create(tcp::socket(ex), overlay::channel_role::initiator, self,
                                           rng, options);
    if (expected_peer)
        conn->expect_peer(*expected_peer);
    if (auto st = co_await conn->connect(to); !st) {
        conn->close();
        co_return st.err();
    }
    if (auto st = co_await conn->handshake(); !st) {
        conn->close();
        co_return st.err();
    }
    co_return conn;
}

} // namespace glasnode::node
