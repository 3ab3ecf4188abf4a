#include "node/flow/test_port_listener.hpp"

#include <exception>
#include <list>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "node/flow/flow_session.hpp"
#include "node/log.hpp"

namespace glasnode::node {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// After a failed accept (out of descriptors, most likely), wait this long before the next one:
// retrying at once would spin and flood the log until a descriptor is free.
constexpr std::chrono::milliseconds accept_backoff{100};

// What a callback's exception says, for the log line that replaces it.
std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "non-standard exception";
    }
}

std::string endpoint_text(const tcp::endpoint& ep) {
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

} // namespace

std::string_view to_string(rejection_reason reason) noexcept {
    switch (reason) {
    case rejection_reason::too_many_unauthenticated:
        return "too_many_unauthenticated";
    case rejection_reason::handshake_timeout:
        return "handshake_timeout";
    case rejection_reason::closed_early:
        return "closed_early";
    case rejection_reason::not_bittorrent:
        return "not_bittorrent";
    case rejection_reason::token_refused:
        return "token_refused";
    case rejection_reason::too_many_flows:
        return "too_many_flows";
    case rejection_reason::io_error:
        return "io_error";
    }
    return "unknown";
}

struct test_port_listener::state {
    state(asio::any_io_executor ex, test_port_config c)
        : acceptor(ex), backoff(ex), config(std::move(c)) {}

    tcp::acceptor acceptor;
    asio::steady_timer backoff; // between failed accepts; cancelled by stop()
    test_port_config config;
    flow_validator validator;
    flow_report_handler on_report;
    flow_rejection_handler on_reject;
    test_port_stats stats;
    bool stopped = false;
    std::list<std::weak_ptr<detail::flow_session>> sessions; // for stop()

    void reject(rejection_reason reason, std::string detail, const tcp::endpoint& remote,
                std::uint32_t resets_received = 0, bool could_reset_peer = true) {
        ++stats.rejected;
        if (stopped || !on_reject)
            return;
        try {
            on_reject(flow_rejection{reason, std::move(detail), remote, resets_received,
                                     could_reset_peer});
        } catch (...) {
            // A handler that throws loses its own notification, nothing else.
            spdlog::error("test port {}: rejection handler failed: {}", port(),
                          describe(std::current_exception()));
        }
    }

    std::uint16_t port() const {
        error_code ec;
        return acceptor.local_endpoint(ec).port();
    }
};

result<std::unique_ptr<test_port_listener>>
test_port_listener::open(asio::any_io_executor executor, test_port_config config,
                         flow_validator validator, flow_report_handler on_report,
                         flow_rejection_handler on_reject) {
    if (!validator || !on_report)
        return make_error(errc::invalid_argument,
                          "test port needs a validator and a report handler");
    if (config.max_unauthenticated == 0 || config.max_flows == 0)
        return make_error(errc::invalid_argument, "test port limits must be positive");
    auto s = std::make_shared<state>(executor, config);
    s->validator = std::move(validator);
    s->on_report = std::move(on_report);
    s->on_reject = std::move(on_reject);
    error_code ec;
    s->acceptor.open(config.bind.protocol(), ec);
    if (!ec)
        s->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec)
        s->acceptor.bind(config.bind, ec);
    if (!ec)
        s->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        return make_error(errc::io_error, "test port " + config.bind.address().to_string() + ":" +
                                              std::to_string(config.bind.port()) + ": " +
                                              ec.message());
    }
    asio::co_spawn(executor, accept_loop(s), log_coroutine_failure{"test port accept loop"});
    return std::unique_ptr<test_port_listener>(new test_port_listener(std::move(s)));
}

test_port_listener::test_port_listener(std::shared_ptr<state> s) : m_state(std::move(s)) {}

test_port_listener::~test_port_listener() {
    stop();
}

void test_port_listener::stop() noexcept {
    if (m_state->stopped)
        return;
    m_state->stopped = true;
    error_code ec;
    m_state->acceptor.close(ec);
    m_state->backoff.cancel();
    for (auto& w : m_state->sessions)
        if (auto session = w.lock())
            session->abort("test port stopped");
    m_state->sessions.clear();
}

tcp::endpoint test_port_listener::local_endpoint() const {
    error_code ec;
    return m_state->acceptor.local_endpoint(ec);
}

test_port_stats test_port_listener::stats() const noexcept {
    return m_state->stats;
}

asio::awaitable<void> test_port_listener::accept_loop(std::shared_ptr<state> s) {
    while (!s->stopped) {
        error_code ec;
        tcp::socket socket =
            co_await s->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (s->stopped)
            break;
        if (ec) {
            // Out of descriptors or a connection aborted in the backlog: keep serving.
            spdlog::warn("test port {}: accept failed: {}", s->port(), ec.message());
            s->backoff.expires_after(accept_backoff);
            co_await s->backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        ++s->stats.accepted;
        if (s->stats.unauthenticated >= s->config.max_unauthenticated) {
            ++s->stats.excess_dropped;
            tcp::endpoint remote = socket.remote_endpoint(ec);
            socket.close(ec);
            s->reject(rejection_reason::too_many_unauthenticated,
                      "limit of " + std::to_string(s->config.max_unauthenticated) +
                          " unauthenticated connections reached",
                      remote);
            continue;
        }
        ++s->stats.unauthenticated;
        auto session = detail::flow_session::create(std::move(socket));
        spdlog::debug("test port {}: accepted {} ({} awaiting a handshake)", s->port(),
                      endpoint_text(session->remote()), s->stats.unauthenticated);
        // Registered before serve() first runs, so that a stop() in between reaches it.
        // Sessions that are gone are forgotten so the list stays bounded by the live ones.
        s->sessions.remove_if([](const auto& w) { return w.expired(); });
        s->sessions.push_back(session);
        asio::co_spawn(s->acceptor.get_executor(), serve(s, std::move(session)),
                       log_coroutine_failure{"test port connection"});
    }
}

asio::awaitable<void> test_port_listener::serve(std::shared_ptr<state> s,
                                                std::shared_ptr<detail::flow_session> session) {
    const tcp::endpoint remote = session->remote();
    auto hs = co_await session->read_peer_handshake(s->config.handshake_timeout);
    --s->stats.unauthenticated;
    if (s->stopped)
        co_return;
    if (!hs) {
        const auto code = hs.err().code;
        const rejection_reason reason = code == errc::timeout  ? rejection_reason::handshake_timeout
                                        : code == errc::closed ? rejection_reason::closed_early
                                        : code == errc::protocol_error
                                            ? rejection_reason::not_bittorrent
                                            : rejection_reason::io_error;
        session->close_unused();
        const bool quiet_end = (reason == rejection_reason::handshake_timeout ||
                                reason == rejection_reason::closed_early) &&
                               session->resets_sent() == 0;
        s->reject(reason, hs.err().reason, remote, session->resets_received(), !quiet_end);
        co_return;
    }

    // Checked before the validator runs, so that a token is never spent on a flow that
    // cannot start.
    if (s->stats.running >= s->config.max_flows) {
        session->close_unused();
        s->reject(rejection_reason::too_many_flows,
                  "limit of " + std::to_string(s->config.max_flows) + " running flows reached",
                  remote);
        co_return;
    }
    std::optional<flow_params> params;
    try {
        params = s->validator(flow_request{hs->kind, hs->hs.info_hash, hs->hs.peer_id, remote});
    } catch (...) {
        spdlog::error("test port {}: validator failed, refusing the flow: {}", s->port(),
                      describe(std::current_exception()));
        params.reset();
    }
    if (!params) {
        session->close_unused();
        s->reject(rejection_reason::token_refused,
                  "no live token for this info-hash (" + std::string{to_string(hs->kind)} +
                      " flow)",
                  remote);
        co_return;
    }

    ++s->stats.running;
    ++s->stats.flows_started;
    flow_report report;
    try {
        report = co_await session->run_provider(std::move(*params));
    } catch (const std::exception& e) {
        report.end = flow_end::error;
        report.detail = std::string{"local failure: "} + e.what();
    }
    --s->stats.running;
    ++s->stats.flows_finished;
    if (s->stopped)
        co_return;
    try {
        s->on_report(report);
    } catch (...) {
        // As for rejections: the handler's own failure stays with the handler.
        spdlog::error("test port {}: report handler failed: {}", s->port(),
                      describe(std::current_exception()));
    }
}

} // namespace glasnode::node
