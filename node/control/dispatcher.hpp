// Routes the messages of an established control connection to typed handlers.
//
// A protocol registers a handler per message type with on<M>(). For each message the
// dispatcher decodes the envelope, then the typed body, and calls the handler. A message it
// cannot decode, of a type nobody serves, or whose handler fails is answered with an `error`
// message and ends the connection: the error is returned, so the server logs it.
//
// Thread-safety: register handlers before serving; dispatch runs on the server's executor.
#pragma once

#include <functional>
#include <map>

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
        auto st = m_registry.add<M>();
        (void)st;
        m_handlers[M::type_id] = [h = std::move(handler)](control_connection& c,
                                                          const wire::envelope& env)
            -> asio::awaitable<status> {
            auto body = wire::decode_body<M>(env);
            if (!body) co_return body.err();
            co_return co_await h(c, std::move(*body));
        };
    }

    asio::awaitable<status> operator()(control_connection& conn, bytes message) const;

    // Sends an `error` message (best effort; the caller decides whether to go on).
    static asio::awaitable<void> send_error(control_connection& conn, wire::wire_error code,
                                            std::string reason);

private:
    wire::message_registry m_registry;
    std::map<wire::message_type, raw_handler> m_handlers;
};

} // namespace glasnode::node
