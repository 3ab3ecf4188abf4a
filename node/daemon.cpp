#include "node/daemon.hpp"

#include <spdlog/spdlog.h>

#include "node/control/dispatcher.hpp"
#include "node/control/server.hpp"
#include "node/diff/provider_service.hpp"
#include "node/endpoint.hpp"
#include "node/log.hpp"
#include "node/results_store.hpp"

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
                  [this](control_connection& c, bytes msg) { return routes(c, std::move(msg)); }) {
        routes.on<wire::ping>([](control_connection& c, wire::ping p) -> asio::awaitable<status> {
            co_return co_await c.send(wire::encode_message(wire::pong{p.nonce}));
        });
        control.on_closed([this](const close_event& e) {
            if (provider)
                provider->session_closed(e.connection_id);
        });
    }

    settings s;
    overlay::identity id;
    asio::io_context io{1};
    system_random rng;
    dispatcher routes;
    control_server control;
    std::unique_ptr<results_store> store;
    std::unique_ptr<provider_service> provider;
    tcp::endpoint control_endpoint;
};

daemon::daemon(settings s, overlay::identity id)
    : m(std::make_unique<impl>(std::move(s), std::move(id))) {}

daemon::~daemon() {
    // The provider refers to the store: it goes first.
    if (m->provider)
        m->provider->stop();
    m->provider.reset();
    close();
}

status daemon::start() {
    auto store = results_store::open(m->s.data_dir, m->s.storage_map_size);
    if (!store)
        return make_error(store.err().code, "database: " + store.err().reason);
    m->store = std::move(*store);

    boost::system::error_code ec;
    const auto bind = asio::ip::make_address(m->s.bind_address, ec);
    if (ec)
        return make_error(errc::invalid_argument, "bind: " + ec.message());

    provider_service_options po;
    po.bind = bind;
    po.bt_port = m->s.bt_port;
    po.neutral_port = m->s.neutral_port;
    po.negotiation.max_rate_bps = std::uint64_t{m->s.provider_max_rate_mbit} * 1'000'000;
    auto provider = provider_service::open(m->io.get_executor(), po, m->rng, m->store.get());
    if (!provider)
        return provider.err();
    m->provider = std::move(*provider);
    m->provider->serve(m->routes);

    auto ep = m->control.listen(tcp::endpoint(bind, m->s.control_port));
    if (!ep)
        return ep.err();
    m->control_endpoint = *ep;
    m->control.start();
    spdlog::info("node {} listening: control {}, bt test port {}, neutral test port {}",
                 overlay::short_id(m->id.key()), to_string(*ep), m->provider->bt_endpoint().port(),
                 m->provider->neutral_endpoint().port());
    return {};
}

void daemon::stop() {
    m->control.stop();
    if (m->provider)
        m->provider->stop();
}

void daemon::close() {
    if (m->store)
        m->store->close();
}

asio::io_context& daemon::io() {
    return m->io;
}

tcp::endpoint daemon::control_endpoint() const {
    return m->control_endpoint;
}

std::string daemon::ready_line() const {
    return "glasnode ready control=" + to_string(m->control_endpoint) +
           " bt=" + std::to_string(m->provider->bt_endpoint().port()) +
           " neutral=" + std::to_string(m->provider->neutral_endpoint().port()) +
           " id=" + overlay::node_id_string(m->id.key());
}

} // namespace glasnode::node
