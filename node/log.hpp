// Logging for the node process (spdlog's default logger, to stderr).
// Node keys appear in logs only as their public short id; secrets never.
#pragma once

#include <exception>
#include <string>
#include <string_view>

namespace glasnode::node {

// Sets up the default logger at `level` ("info", ...).
void init_logging(std::string_view level);

// A co_spawn completion handler that logs an exception escaping a coroutine instead of
// letting it terminate the process (coroutines report errors as values; this is the last net).
struct log_coroutine_failure {
    std::string_view what;
    void operator()(std::exception_ptr e) const;
};

} // namespace glasnode::node
