// Runs one coroutine to completion on an io_context from a test body, while whatever else was
// spawned on that context (a server, a provider) keeps running. Bounded: throws if the
// coroutine has not finished within `limit`, and rethrows what it threw.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>

#include "node/asio.hpp"

namespace glasnode::test_support {

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task,
      std::chrono::seconds limit = std::chrono::seconds(20)) {
    std::optional<T> out;
    std::exception_ptr failure;
    auto wrapper = [&out](boost::asio::awaitable<T> a) -> boost::asio::awaitable<void> {
        out.emplace(co_await std::move(a));
    };
    boost::asio::co_spawn(io, wrapper(std::move(task)), [&](std::exception_ptr e) {
        failure = e;
        io.stop();
    });
    io.restart();
    io.run_for(limit);
    if (failure)
        std::rethrow_exception(failure);
    if (!out)
        throw std::runtime_error("coroutine did not finish within the test's limit");
    return std::move(*out);
}

} // namespace glasnode::test_support
