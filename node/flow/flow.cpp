#include "node/flow/flow.hpp"

#include <exception>

#include "node/flow/flow_session.hpp"

namespace glasnode::node {

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
