#include "node/diff/provider_service.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "node/diff/flows.hpp"
#include "node/diff/report.hpp"
#include "node/endpoint.hpp"
#include "node/log.hpp"
#include "tests_proto/negotiation/messages.hpp"

namespace glasnode::node {
namespace {

using clock = std::chrono::steady_clock;
namespace nego = proto::negotiation;

} // namespace

struct provider_service::state : std::enable_shared_from_this<provider_service::state> {
    state(asio::any_io_executor e, provider_service_options o, random_source& r, results_store* s)
        : ex(e), options(o), rng(r), store(s), timer(e) {}

    struct session_info {
        std::weak_ptr<control_connection> conn;
        std::string peer_id;
        std::string remote;
        asio::ip::address address; // of the control connection
    };
    struct granted_test {
        clock::time_point started;
        std::uint64_t started_unix_ms = 0;
    };

    asio::any_io_executor ex;
    provider_service_options options;
    random_source& rng;
    results_store* store;
    std::optional<nego::provider> core; // made once the test ports are bound
    asio::steady_timer timer;
    std::unique_ptr<test_port_listener> bt;
    std::unique_ptr<test_port_listener> neutral;
    std::map<std::uint64_t, session_info> sessions;
    std::map<std::uint64_t, granted_test> granted; // by session
    bool stopped = false;

    void apply(nego::effects out) {
        for (auto& e : out) {
            if (auto* send = std::get_if<nego::send_message>(&e)) {
                auto it = sessions.find(send->session);
                auto conn = it == sessions.end() ? nullptr : it->second.conn.lock();
                if (!conn)
                    continue;
                asio::co_spawn(
                    ex,
                    [conn, msg = std::move(send->message),
                     close = send->close_after]() -> asio::awaitable<void> {
                        auto st = co_await conn->send(msg);
                        if (!st || close)
                            conn->close();
                    },
                    log_coroutine_failure{"provider send"});
            } else if (auto* g = std::get_if<nego::test_granted>(&e)) {
                granted[g->session] = {clock::now(), unix_now_ms()};
                spdlog::info("provider: test granted to {} ({} flows)", who(g->session),
                             g->schedule.size());
            } else if (auto* f = std::get_if<nego::test_finished>(&e)) {
                finished(*f);
            }
        }
        rearm();
    }

    std::string who(std::uint64_t session) const {
        auto it = sessions.find(session);
        return it == sessions.end()
                   ? "?"
                   : it->second.remote + " peer " + it->second.peer_id.substr(0, 16);
    }

    void finished(const nego::test_finished& f) {
        spdlog::info("provider: test of {} finished: {}", who(f.session),
                     nego::to_string(f.reason));
        auto g = granted.find(f.session);
        if (g == granted.end())
            return;
        if (f.reason == nego::finish_reason::completed && store) {
            auto flows = proto::diff::match_measurements(f.schedule, f.agent_measurements,
                                                         f.provider_measurements);
            auto info = sessions.find(f.session);
            test_report r;
            r.test_id = to_hex(byte_view(f.token.data(), 8));
            r.role = "provider";
            r.started_unix_ms = g->second.started_unix_ms;
            r.duration_s = std::chrono::duration<double>(clock::now() - g->second.started).count();
            if (info != sessions.end()) {
                r.peer_id = info->second.peer_id;
                r.peer_address = info->second.remote;
            }
            r.runs.push_back(std::move(flows));
            r.unidentified.push_back(f.unidentified);
            if (auto st = proto::diff::analyse_runs(r); !st) {
                spdlog::warn("provider: analysis of a served test failed: {}", st.err().describe());
            } else if (auto put = store->put(to_record(r)); !put) {
                spdlog::warn("provider: could not store a served test: {}", put.err().describe());
            }
        }
        granted.erase(g);
    }

    // A test port connection that never became a flow counts for every running test whose
    // agent has its address (a NAT may put several agents behind one; each is told).
    void unidentified(const flow_rejection& r) {
        if (stopped || !core)
            return;
        const auto now = clock::now();
        for (const auto& [session, info] : sessions) {
            if (info.address == r.remote.address() && core->is_running(session))
                core->on_unidentified_connection(now, session, r.resets_received,
                                                 r.could_reset_peer);
        }
    }

    void rearm() {
        auto next = core->next_expiry();
        if (!next || stopped) {
            timer.cancel();
            return;
        }
        timer.expires_at(*next);
        timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            auto s = weak.lock();
            if (ec || !s || s->stopped)
                return;
            s->apply(s->core->handle_expiry(clock::now()));
        });
    }

    std::optional<flow_params> authorize(const flow_request& req, proto::test_port port) {
        if (!core)
            return std::nullopt;
        auto a = core->authorize_flow(clock::now(), req.kind, req.info_hash, port);
        if (auto* refusal = std::get_if<nego::flow_refusal>(&a)) {
            spdlog::info("provider: refused a {} flow from {} on the {} port: {}",
                         proto::to_string(req.kind), to_string(req.remote), proto::to_string(port),
                         nego::to_string(*refusal));
            return std::nullopt;
        }
        const auto& assignment = std::get<nego::flow_assignment>(a);
        flow_params p;
        p.role = assignment.role;
        p.info_hash = req.info_hash;
        p.duration = std::chrono::milliseconds(assignment.spec.duration_ms);
        p.max_rate_bps = assignment.max_rate_bps;
        p.seed = rng.next_u64();
        // A flow must be over by the test's deadline, whatever the path does to it.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            assignment.deadline - clock::now());
        p.stall_timeout = std::min(p.stall_timeout, std::max(left, std::chrono::milliseconds(1)));
        return p;
    }

    void flow_finished(const flow_report& report) {
        if (!core)
            return;
        auto out =
            core->on_flow_finished(clock::now(), report.info_hash, to_measurement(report, 0));
        if (!out) {
            spdlog::info("provider: a {} flow from {} was not recorded: {}",
                         proto::to_string(report.kind), to_string(report.remote),
                         out.err().describe());
            return;
        }
        apply(std::move(*out));
    }

    static std::uint64_t unix_now_ms() {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    }
};

provider_service::provider_service(std::shared_ptr<state> s) : m(std::move(s)) {}

provider_service::~provider_service() {
    stop();
}

result<std::unique_ptr<provider_service>> provider_service::open(asio::any_io_executor ex,
                                                                 provider_service_options options,
                                                                 random_source& rng,
                                                                 results_store* store) {
    auto s = std::make_shared<state>(ex, options, rng, store);
    auto open_port = [&](std::uint16_t port,
                         proto::test_port which) -> result<std::unique_ptr<test_port_listener>> {
        test_port_config c;
        c.bind = tcp::endpoint(options.bind, port);
        std::weak_ptr<state> weak = s;
        auto l = test_port_listener::open(
            ex, c,
            [weak, which](const flow_request& req) -> std::optional<flow_params> {
                auto st = weak.lock();
                if (!st)
                    return std::nullopt;
                return st->authorize(req, which);
            },
            [weak](const flow_report& report) {
                if (auto st = weak.lock())
                    st->flow_finished(report);
            },
            [weak, which](const flow_rejection& r) {
                spdlog::info("provider: {} port dropped {}: {} ({})", proto::to_string(which),
                             to_string(r.remote), to_string(r.reason), r.detail);
                if (auto st = weak.lock())
                    st->unidentified(r);
            });
        if (!l)
            return make_error(l.err().code, std::string(proto::to_string(which)) +
                                                " test port: " + l.err().reason);
        return std::move(*l);
    };
    auto bt = open_port(options.bt_port, proto::test_port::bt);
    if (!bt)
        return bt.err();
    s->bt = std::move(*bt);
    auto neutral = open_port(options.neutral_port, proto::test_port::neutral);
    if (!neutral)
        return neutral.err();
    s->neutral = std::move(*neutral);
    options.negotiation.bt_port = s->bt->local_endpoint().port();
    options.negotiation.neutral_port = s->neutral->local_endpoint().port();
    s->core.emplace(options.negotiation, rng);
    return std::unique_ptr<provider_service>(new provider_service(std::move(s)));
}

void provider_service::serve(dispatcher& routes) {
    std::weak_ptr<state> weak = m;
    auto remember = [weak](control_connection& c) {
        auto s = weak.lock();
        if (!s)
            return;
        auto& info = s->sessions[c.id()];
        info.conn = c.weak_from_this();
        info.peer_id = overlay::node_id_string(c.peer());
        info.remote = c.remote();
        info.address = c.remote_endpoint().address();
    };
    routes.on<proto::negotiation::negotiate>(
        [weak, remember](control_connection& c,
                         proto::negotiation::negotiate msg) -> asio::awaitable<status> {
            auto s = weak.lock();
            if (!s)
                co_return make_error(errc::closed, "provider stopped");
            remember(c);
            s->apply(s->core->on_negotiate(clock::now(), c.id(), msg));
            co_return status{};
        });
    routes.on<proto::negotiation::collect>(
        [weak](control_connection& c, proto::negotiation::collect msg) -> asio::awaitable<status> {
            auto s = weak.lock();
            if (!s)
                co_return make_error(errc::closed, "provider stopped");
            // The core holds the collect while our side of the last flows is still draining.
            s->apply(s->core->on_collect(clock::now(), c.id(), msg));
            co_return status{};
        });
    routes.on<proto::negotiation::cancel>(
        [weak](control_connection& c, proto::negotiation::cancel) -> asio::awaitable<status> {
            auto s = weak.lock();
            if (!s)
                co_return make_error(errc::closed, "provider stopped");
            s->apply(s->core->on_cancel(clock::now(), c.id()));
            co_return status{};
        });
}

void provider_service::session_closed(std::uint64_t connection_id) {
    if (!m->sessions.contains(connection_id))
        return;
    m->apply(m->core->on_session_closed(clock::now(), connection_id));
    m->sessions.erase(connection_id);
}

void provider_service::stop() {
    m->stopped = true;
    m->timer.cancel();
    if (m->bt)
        m->bt->stop();
    if (m->neutral)
        m->neutral->stop();
}

tcp::endpoint provider_service::bt_endpoint() const {
    return m->bt->local_endpoint();
}
tcp::endpoint provider_service::neutral_endpoint() const {
    return m->neutral->local_endpoint();
}

} // namespace glasnode::node
