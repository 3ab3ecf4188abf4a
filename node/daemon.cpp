#include "node/daemon.hpp"

#include <boost/asio/ip/address.hpp>
#include <spdlog/spdlog.h>

#include "node/control/dispatcher.hpp"
#include "node/control/server.hpp"
#include "node/endpoint.hpp"
#include "node/log.hpp"

namespace glasnode::node {
namespace {

control_server_options control_options(const settings& s) {
    control_server_options o;
    o.max_connections = s.max_control_connections;
    o.idle_timeout = s.idle_timeout;
    o.connection.handshake_timeout = s.handshake_timeout;
    o.connection.limits.max_frame = s.max_frame_bytes;
    return o;
}

} // namespace

struct daemon::impl {
    impl(settings st, overlay::identity i)
        : s(std::move(st)), id(std::move(i)),
          control(io.get_executor(), id, rng, control_options(s),
                  [this](control_connection& c, bytes m) { return routes(c, std::move(m)); }) {
        routes.on<wire::ping>(
            [](control_connection& c, wire::ping p) -> asio::awaitable<status> {
                co_return co_await c.send(wire::encode_message(wire::pong{p.nonce}));
            });
    }

    settings s;
    overlay::identity id;
    asio::io_context io{1};
    system_random rng;
    dispatcher routes;
    control_server control;
    tcp::endpoint control_endpoint;
};

daemon::daemon(settings s, overlay::identity id)
    : m(std::make_unique<impl>(std::move(s), std::move(id))) {}

daemon::~daemon() = default;

status daemon::start() {
    boost::system::error_code ec;
    const auto bind = asio::ip::make_address(m->s.bind_address, ec);
    if (ec) return make_error(errc::invalid_argument, "bind: " + ec.message());
    auto ep = m->control.listen(tcp::endpoint(bind, m->s.control_port));
    if (!ep) return ep.err();
    m->control_endpoint = *ep;
    m->control.start();
    spdlog::info("node {} listening: control {}", overlay::short_id(m->id.key()), to_string(*ep));
    return {};
}

void daemon::stop() { m->control.stop(); }

asio::io_context& daemon::io() { return m->io; }

std::string daemon::ready_line() const {
    return "glasnode ready control=" + to_string(m->control_endpoint) +
           " id=" + overlay::node_id_string(m->id.key());
}

} // namespace glasnode::node
