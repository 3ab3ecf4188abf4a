// "HOST:PORT" as people type it: "10.0.0.2:9773", "[::1]:9773", "localhost:9773".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "node/asio.hpp"
#include "storage/result.hpp"

namespace glasnode::node {

struct host_port {
    std::string host; // without brackets
    std::uint16_t port = 0;
};

// errc::invalid_argument with a one-line reason for anything else.
result<host_port> parse_host_port(std::string_view text);

// Resolves the host (numeric addresses need no lookup); the first address returned.
asio::awaitable<result<tcp::endpoint>> resolve(host_port where);

// "1.2.3.4:5" or "[::1]:5".
std::string to_string(const tcp::endpoint& ep);

} // namespace glasnode::node
