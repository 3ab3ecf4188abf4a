#include "node/control/dispatcher.hpp"

#include <spdlog/spdlog.h>

namespace glasnode::node {
dispatcher::dispatcher() : m_registry(wire::core_message_registry()) {}

asio::awaitable<void> dispatcher::send_error(control_connection& conn, wire::wire_error code,
                                             std::string reason) {
    wire::error_message e;
    e.code = static_cast<std::uint16_t>(code);
    e.reason = std::move(reason);
    if (auto st = co_await conn.send(wire::encode_message(e)); !st)
        spdlog::debug("control: could not tell {} about the error: {}", conn.remote(),
                      st.err().describe());
}

asio::awaitable<status> dispatcher::operator()(control_connection& conn, bytes message) const {
    auto env = wire::decode_envelope(message, m_registry);
    if (!env) {
        co_await send_error(conn, wire::to_wire_error(env.err().code), env.err().reason);
        co_return env.err();
    }
    auto it = m_handlers.find(env->type());
    if (it == m_handlers.end()) {
        // Known to the wire layer (e.g. a handshake type) but not served here.
        const std::string reason =
            "unexpected message " + std::string(m_registry.name(env->type()));
        co_await send_error(conn, wire::wire_error::protocol, reason);
        co_return make_error(errc::protocol_error, reason);
    }
    auto st = co_await it->second(conn, *env);
    if (!st)
        co_await send_error(conn, wire::to_wire_error(st.err().code), st.err().reason);
    co_return st;
}

} // namespace glasnode::node
