// The Boost.Asio pieces the I/O layer uses, included in one place.
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>; g++ 12 no longer
// pulls it in transitively, so it is included first here.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace glasnode::node {
namespace asio = boost::asio;
using asio::ip::tcp;
} // namespace glasnode::node
