#include "node/control/server.hpp"

#include <vector>

#include <spdlog/spdlog.h>

#include "node/log.hpp"

namespace glasnode::node {

struct control_server::state : std::enable_shared_from_this<control_server::state> {
    state(asio::any_io_executor e, const overlay::identity& id, random_source& r,
          control_server_options o, message_handler h)
        : ex(e), acceptor(e), self(id), rng(r), options(o), handler(std::move(h)) {}

    asio::any_io_executor ex;
    tcp::acceptor acceptor;
    const overlay::identity& self;
    random_source& rng;
    control_server_options options;
    message_handler handler;
    std::function<void(const close_event&)> observer;
    std::vector<std::weak_ptr<control_connection>> connections;
    bool stopped = false;

    void forget_expired() {
        std::erase_if(connections, [](const auto& w) { return w.expired(); });
    }

    void report(const control_connection& conn, const error& why) {
        close_event ev{conn.id(), conn.remote(), conn.authenticated_peer(), why};
        const std::string who =
            ev.peer ? conn.remote() + " peer " + overlay::short_id(*ev.peer) : conn.remote();
        if (why.code == errc::closed)
            spdlog::info("control: {} disconnected: {}", who, why.describe());
        else
            spdlog::warn("control: dropped {}: {}", who, why.describe());
        if (observer)
            observer(ev);
    }

    // `keep` holds the server state for as long as the session runs.
    asio::awaitable<void> serve([[maybe_unused]] std::shared_ptr<state> keep,
                                std::shared_ptr<control_connection> conn) {
        if (auto st = co_await conn->handshake(); !st) {
            report(*conn, st.err());
            conn->close();
            co_return;
        }
        spdlog::info("control: {} authenticated as {}", conn->remote(),
                     overlay::short_id(conn->peer()));
        for (;;) {
            auto msg = co_await conn->receive(options.idle_timeout);
            if (!msg) {
                report(*conn, msg.err());
                break;
            }
            if (auto st = co_await handler(*conn, std::move(*msg)); !st) {
                report(*conn, st.err());
                break;
            }
        }
        conn->close();
    }

    asio::awaitable<void> accept_loop(std::shared_ptr<state> keep) {
        while (!stopped) {
            boost::system::error_code ec;
            tcp::socket sock =
                co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                if (stopped || ec == asio::error::operation_aborted)
                    break;
                spdlog::warn("control: accept failed: {}", ec.message());
                continue;
            }
            forget_expired();
            if (connections.size() >= options.max_connections) {
                boost::system::error_code ignored;
                auto ep = sock.remote_endpoint(ignored);
                spdlog::warn("control: refused {}: {} connections already open",
                             ep.address().to_string(), connections.size());
                if (observer)
                    observer({0, ep.address().to_string(), std::nullopt,
                              make_error(errc::busy, "too many control connections")});
                sock.close(ignored);
                continue;
            }
            sock.set_option(tcp::no_delay(true), ec);
            auto conn = control_connection::create(
                std::move(sock), overlay::channel_role::responder, self, rng, options.connection);
            spdlog::debug("control: accepted {}", conn->remote());
            connections.push_back(conn);
            asio::co_spawn(ex, serve(keep, conn), log_coroutine_failure{"control session"});
        }
    }
};

control_server::control_server(asio::any_io_executor ex, const overlay::identity& self,
                               random_source& rng, control_server_options options,
                               message_handler handler)
    : m(std::make_shared<state>(ex, self, rng, options, std::move(handler))) {}

control_server::~control_server() {
    stop();
}

result<tcp::endpoint> control_server::listen(const tcp::endpoint& at) {
    boost::system::error_code ec;
    auto fail = [&](std::string_view what) {
        auto e = make_error(errc::io_error, "control port " + at.address().to_string() + ":" +
                                                std::to_string(at.port()) + ": " +
                                                std::string(what) + ": " + ec.message());
        // A half-set-up acceptor would hold the port (or a descriptor) until destruction.
        boost::system::error_code ignored;
        m->acceptor.close(ignored);
        return e;
    };
    m->acceptor.open(at.protocol(), ec);
    if (ec)
        return fail("open");
    m->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    m->acceptor.bind(at, ec);
    if (ec)
        return fail("bind");
    m->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return fail("listen");
    auto ep = m->acceptor.local_endpoint(ec);
    if (ec)
        return fail("local_endpoint");
    return ep;
}

void control_server::start() {
    asio::co_spawn(m->ex, m->accept_loop(m), log_coroutine_failure{"control accept loop"});
}

void control_server::stop() {
    m->stopped = true;
    boost::system::error_code ignored;
    m->acceptor.close(ignored);
    for (auto& w : m->connections) {
        if (auto c = w.lock())
            c->close();
    }
    m->connections.clear();
}

std::size_t control_server::active_connections() const noexcept {
    m->forget_expired();
    return m->connections.size();
}

void control_server::on_closed(std::function<void(const close_event&)> observer) {
    m->observer = std::move(observer);
}

} // namespace glasnode::node
