#include "node/flow/flow.hpp"

#include <exception>

#include "node/flow/flow_session.hpp"

namespace glasnode::node {

std::string_view to_string(flow_role role) noexcept {
    return role == flow_role::seed ? "seed" : "leech";
}

std::string_view to_string(flow_end end) noexcept {
    switch (end) {
    case flow_end::completed:
        return "completed";
    case flow_end::reset_received:
        return "reset_received";
    case flow_end::eof_early:
        return "eof_early";
    case flow_end::stalled:
        return "stalled";
    case flow_end::connect_failed:
        return "connect_failed";
    case flow_end::connect_timeout:
        return "connect_timeout";
    case flow_end::handshake_failed:
        return "handshake_failed";
    case flow_end::refused:
        return "refused";
    case flow_end::error:
        return "error";
    }
    return "unknown";
}

boost::asio::awaitable<flow_report> run_agent_flow(boost::asio::any_io_executor executor,
                                                   boost::asio::ip::tcp::endpoint provider,
                                                   flow_params params) {
    flow_report failed;
    failed.kind = params.kind;
    failed.role = params.role;
    failed.remote = provider;
    try {
        auto session = detail::flow_session::create(executor);
        co_return co_await session->run_agent(provider, std::move(params));
    } catch (const std::exception& e) {
        failed.detail = std::string{"local failure: "} + e.what();
    }
    failed.end = flow_end::error;
    co_return failed;
}

} // namespace glasnode::node
