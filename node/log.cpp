#include "node/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace glasnode::node {

void init_logging(std::string_view level) {
    auto logger = spdlog::stderr_color_mt("glasnode");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    logger->set_level(spdlog::level::from_str(std::string(level)));
    spdlog::set_default_logger(std::move(logger));
}

void log_coroutine_failure::operator()(std::exception_ptr e) const {
    if (!e)
        return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        spdlog::error("{}: unexpected exception: {}", what, x.what());
    } catch (...) {
        spdlog::error("{}: unexpected non-standard exception", what);
    }
}

} // namespace glasnode::node
