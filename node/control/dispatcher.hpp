// Routes the messages of an established control connection to typed handlers.
//
// A protocol registers a handler per message type with on<M>(). For each message the
// dispatcher decodes the envelope, then the typed body, and calls the handler. A message it
// cannot decode, of a type nobody serves, or whose handler fails is answered with an `error`
// message and ends the connection: the error is returned, so the server logs it.
//
// Registration errors are wiring bugs, not runtime conditions: on<M>() throws
// std::logic_error for a second handler of one type, or for a type number that another
// message already holds.
//
// Thread-safety: register handlers before serving; dispatch runs on the server's executor.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "node/control/connection.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/message.hpp"

namespace glasnode::node {

class dispatcher {
public:
    using raw_handler =
        std::function<asio::awaitable<status>(control_connection&, const wire::envelope&)>;

    dispatcher();

    template <class M>
    void on(std::function<asio::awaitable<status>(control_connection&, M)> handler) {
        // A type may already be known (the core messages are): that is fine if it is this one.
        if (m_handlers.contains(M::type_id))
            throw std::logic_error("dispatcher: a second handler for " + std::string(M::name));
        if (m_registry.contains(M::type_id)) {
            if (m_registry.name(M::type_id) != M::name)
                throw std::logic_error("dispatcher: message type " + std::to_string(M::type_id) +
                                       " is " + std::string(m_registry.name(M::type_id)) +
                                       ", not " + std::string(M::name));
        } else if (auto st = m_registry.add<M>(); !st) {
            throw std::logic_error("dispatcher: " + st.err().reason);
        }
        m_handlers[M::type_id] =
            [h = std::move(handler)](control_connection& c,
                                     const wire::envelope& env) -> asio::awaitable<status> {
            auto body = wire::decode_body<M>(env);
            if (!body)
                co_return body.err();
            co_return co_await h(c, std::move(*body));
        };
    }

    asio::awaitable<status> operator()(control_connection& conn, bytes message) const;

    // Sends an `error` message (best effort, a failure is logged at debug level: the caller
    // reports the error that made it send one, and decides whether to go on).
    static asio::awaitable<void> send_error(control_connection& conn, wire::wire_error code,
                                            std::string reason);

private:
    wire::message_registry m_registry;
    std::map<wire::message_type, raw_handler> m_handlers;
};

} // namespace glasnode::node
