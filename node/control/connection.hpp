// One control-channel connection: a TCP socket driven by the sans-IO secure_channel core.
//
// Full duplex on one executor: one coroutine reads (handshake(), then receive()), while any
// coroutine may send(). Sends are queued in order; the first sender writes the queue out and
// later senders return at once (their message is written by the active writer). Queued output
// is bounded: a peer that stops reading fails the connection with errc::limit_exceeded.
//
// Every operation has a deadline; when one passes, the socket is closed and the operation
// returns errc::timeout. After any error the connection is finished: the caller logs the
// reason and drops it (close() is idempotent).
//
// Lifetime: always held by std::shared_ptr (timers keep it alive while armed). Not copyable
// or movable. The identity and random source must outlive it. Not thread-safe: use it from
// its executor only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "node/asio.hpp"
#include "overlay/channel/secure_channel.hpp"
#include "overlay/identity/identity.hpp"
#include "storage/result.hpp"

namespace glasnode::node {

struct connection_options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds handshake_timeout{5000};
    std::chrono::milliseconds write_timeout{10000};
    std::size_t max_queued_output = 4 * 1024 * 1024;
    overlay::channel_limits limits{};
};

class control_connection : public std::enable_shared_from_this<control_connection> {
public:
    static std::shared_ptr<control_connection>
    create(tcp::socket socket, overlay::channel_role role, const overlay::identity& self,
           random_source& rng, connection_options options = {});
    control_connection(const control_connection&) = delete;
    control_connection& operator=(const control_connection&) = delete;
    ~control_connection();

    // Initiator side: refuse a peer presenting any other key.
    void expect_peer(const overlay::public_key& key) { m_channel.expect_peer(key); }

    asio::awaitable<status> connect(const tcp::endpoint& to);
    asio::awaitable<status> handshake();
    // The next application message, waiting at most `timeout` for it. One reader at a time.
    asio::awaitable<result<bytes>> receive(std::chrono::milliseconds timeout);
    // Encrypts and queues one message; returns once it is written or handed to the active
    // writer. An error means the connection is finished.
    asio::awaitable<status> send(byte_view message);
    void close() noexcept;

    bool established() const noexcept { return m_channel.established(); }
    // The key the peer authenticated with; kept after the channel fails, for the log line.
    const std::optional<overlay::public_key>& authenticated_peer() const noexcept { return m_peer; }
    // Only after a successful handshake.
    const overlay::public_key& peer() const { return *m_peer; }
    // "127.0.0.1:9773", or "?" when unknown.
    const std::string& remote() const noexcept { return m_remote; }
    // The same as an endpoint; default-constructed when unknown.
    const tcp::endpoint& remote_endpoint() const noexcept { return m_remote_endpoint; }
    // Unique per process: lets protocol cores address a connection without holding it.
    std::uint64_t id() const noexcept { return m_id; }

private:
    using clock = std::chrono::steady_clock;

    // Closes the socket when an armed deadline passes; a late expiry of an earlier arming is
    // ignored (generation check).
    struct watchdog {
        explicit watchdog(const asio::any_io_executor& ex) : timer(ex) {}
        asio::steady_timer timer;
        std::uint64_t generation = 0;
        bool fired = false;
    };

    control_connection(tcp::socket socket, overlay::channel_role role,
                       const overlay::identity& self, random_source& rng,
                       connection_options options);

    void arm(watchdog control_connection::*dog, clock::duration timeout);
    void disarm(watchdog& dog);
    asio::awaitable<status> read_more(clock::time_point deadline);
    asio::awaitable<status> write_queued();
    error io_failure(const boost::system::error_code& ec, std::string_view what,
                     const watchdog& dog) const;

    tcp::socket m_socket;
    watchdog m_read_dog;
    watchdog m_write_dog;
    connection_options m_options;
    overlay::secure_channel m_channel;
    std::string m_remote = "?";
    tcp::endpoint m_remote_endpoint;
    std::optional<overlay::public_key> m_peer;
    std::uint64_t m_id;
    bytes m_queued;         // encrypted output not yet handed to the socket
    bool m_writing = false; // a coroutine is in write_queued()
    std::optional<error> m_write_error;
    std::array<std::uint8_t, 16 * 1024> m_buffer{};
};

// Dials `to`, completes the handshake (checking the peer key when given) and returns the
// established connection.
asio::awaitable<result<std::shared_ptr<control_connection>>>
dial_control(asio::any_io_executor ex, tcp::endpoint to, const overlay::identity& self,
             random_source& rng, const overlay::public_key* expected_peer = nullptr,
             connection_options options = {});

} // namespace glasnode::node
