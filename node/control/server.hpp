// The control-port server: accepts TCP connections, runs the secure-channel handshake on each
// and hands every authenticated message to a handler. A connection that misbehaves (bad
// handshake, altered or replayed frame, timeout, handler error) is closed with its reason
// logged and reported to on_closed; the other connections carry on.
//
// Limits: at most `max_connections` at once (more are closed right after accept), a handshake
// deadline, an idle deadline between messages, and the channel's frame limits.
//
// Thread-safety: all members run on the executor passed in; call them from it.
// Not copyable or movable; the identity and random source must outlive it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "node/control/connection.hpp"

namespace glasnode::node {

struct control_server_options {
    std::size_t max_connections = 64;
    std::chrono::milliseconds idle_timeout{120000};
    connection_options connection{};
};

// Why a connection ended, for logs and tests. `peer` is set once the handshake succeeded.
struct close_event {
    std::uint64_t connection_id = 0; // control_connection::id(); 0 if refused at accept
    std::string remote;
    std::optional<overlay::public_key> peer;
    error why;
};

class control_server {
public:
    // Called for each message on an established connection; an error closes the connection.
    using message_handler =
        std::function<asio::awaitable<status>(control_connection&, bytes message)>;

    control_server(asio::any_io_executor ex, const overlay::identity& self, random_source& rng,
                   control_server_options options, message_handler handler);
    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

    // Binds and listens; the bound endpoint (port 0 picks one).
    result<tcp::endpoint> listen(const tcp::endpoint& at);
    // Starts accepting (after listen()).
    void start();
    // Stops accepting and closes every connection.
    void stop();

    std::size_t active_connections() const noexcept;
    void on_closed(std::function<void(const close_event&)> observer);

private:
    struct state;
    std::shared_ptr<state> m;
};

} // namespace glasnode::node
