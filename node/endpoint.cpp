#include "node/endpoint.hpp"

#include <charconv>

namespace glasnode::node {

result<host_port> parse_host_port(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return make_error(errc::invalid_argument,
                          "\"" + std::string(text) + "\": " + std::string(why) +
                              " (expected HOST:PORT, e.g. 192.0.2.7:9773 or [::1]:9773)");
    };
    host_port out;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return bad("bad bracketed address");
        out.host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0)
            return bad("missing port");
        if (text.substr(0, colon).find(':') != std::string_view::npos)
            return bad("put an IPv6 address in brackets");
        out.host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
    }
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || p != port_text.data() + port_text.size() || port < 1 || port > 65535)
        return bad("port must be 1..65535");
    out.port = static_cast<std::uint16_t>(port);
    if (out.host.empty())
        return bad("empty host");
    return out;
}

asio::awaitable<result<tcp::endpoint>> resolve(host_port where) {
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(where.host, ec);
    if (!ec)
        co_return tcp::endpoint(addr, where.port);
    tcp::resolver resolver(co_await asio::this_coro::executor);
    auto results = co_await resolver.async_resolve(where.host, std::to_string(where.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec || results.empty())
        co_return make_error(errc::not_found,
                             where.host + ": " + (ec ? ec.message() : "no address found"));
    co_return results.begin()->endpoint();
}

std::string to_string(const tcp::endpoint& ep) {
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
           std::to_string(ep.port());
}

} // namespace glasnode::node
