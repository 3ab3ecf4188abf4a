#include "node/diff/agent.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "node/endpoint.hpp"
#include "node/flow/flow.hpp"
#include "node/log.hpp"
#include "tests_proto/negotiation/agent.hpp"

namespace glasnode::node {
namespace {

namespace nego = proto::negotiation;
using clock = std::chrono::steady_clock;

nego::agent_options core_options(const agent_options& o) {
    nego::agent_options c;
    c.schedule = o.schedule;
    c.confirm = o.confirm;
    c.queue_timeout = o.queue_timeout;
    c.reply_timeout = o.reply_timeout;
    c.keepalive = o.queue_keepalive;
    c.silence_timeout = o.silence_timeout;
    return c;
}

// Drives one agent core (tests_proto/negotiation/agent.hpp) with Asio: the control connection's
// reads and writes, the core's timer and the test flows. Everything runs on one executor.
class agent_driver : public std::enable_shared_from_this<agent_driver> {
public:
    agent_driver(asio::any_io_executor ex, std::shared_ptr<control_connection> conn,
                 tcp::endpoint provider, random_source& rng, const agent_options& o)
        : m_ex(ex), m_conn(std::move(conn)), m_provider(std::move(provider)), m_o(o),
          m_core(core_options(o), rng), m_timer(ex), m_finished(ex, clock::time_point::max()) {}

    // Runs the test to its end: its data, or the error that stopped it.
    asio::awaitable<result<proto::diff::test_data>> run() {
        asio::co_spawn(m_ex, read_loop(shared_from_this()), log_coroutine_failure{"agent reader"});
        apply(m_core.start(clock::now()));
        while (!m_outcome) {
            boost::system::error_code ec;
            co_await m_finished.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_return std::move(*m_outcome);
    }

private:
    static asio::awaitable<void> read_loop(std::shared_ptr<agent_driver> self) {
        // The core judges silence (its silence_timeout); this bound only keeps a read from
        // outliving a core that stopped caring.
        const auto bound = 2 * self->m_o.silence_timeout + std::chrono::seconds(1);
        while (!self->m_core.finished()) {
            auto payload = co_await self->m_conn->receive(
                std::chrono::duration_cast<std::chrono::milliseconds>(bound));
            if (self->m_core.finished())
                break;
            if (!payload) {
                self->apply(self->m_core.on_closed(
                    clock::now(),
                    make_error(payload.err().code, "control connection: " + payload.err().reason)));
                break;
            }
            self->apply(self->m_core.receive(clock::now(), *payload));
        }
    }

    void apply(nego::agent_effects out) {
        for (auto& e : out) {
            if (auto* send = std::get_if<nego::agent_send>(&e)) {
                asio::co_spawn(
                    m_ex,
                    [self = shared_from_this(),
                     msg = std::move(send->message)]() -> asio::awaitable<void> {
                        // A failed send finishes the connection: the reader then reports it to
                        // the core as closed.
                        if (auto st = co_await self->m_conn->send(msg); !st)
                            spdlog::debug("agent: send failed: {}", st.err().describe());
                    },
                    log_coroutine_failure{"agent send"});
            } else if (auto* flows = std::get_if<nego::start_flows>(&e)) {
                start(*flows);
            } else if (auto* q = std::get_if<nego::queued>(&e)) {
                say(fmt::format("waiting for the provider: position {} of {}", q->position,
                                q->length));
            } else if (auto* r = std::get_if<nego::run_started>(&e)) {
                m_run_flows = r->flows;
                m_done_flows = 0;
                say(fmt::format("{}: {} flows in {} slots, about {:.0f} s",
                                r->run == 0 ? "test" : "confirmation rerun", r->flows, r->slots,
                                std::chrono::duration<double>(r->transfer_time).count()));
            } else if (auto* done = std::get_if<nego::test_done>(&e)) {
                finish(std::move(done->data));
            } else if (auto* failed = std::get_if<nego::test_failed>(&e)) {
                finish(std::move(failed->why));
            }
        }
        rearm();
    }

    void rearm() {
        const auto next = m_core.next_expiry();
        if (!next) {
            m_timer.cancel();
            return;
        }
        m_timer.expires_at(*next);
        m_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->m_core.finished())
                return;
            self->apply(self->m_core.handle_expiry(clock::now()));
        });
    }

    void start(const nego::start_flows& slot) {
        const bool paired = slot.flows.size() > 1;
        for (const auto& f : slot.flows) {
            flow_params p;
            p.kind = f.spec.kind;
            p.role = f.role;
            p.info_hash = f.info_hash;
            p.duration = std::chrono::milliseconds(f.spec.duration_ms);
            p.connect_timeout = m_o.connect_timeout;
            p.congestion_control = m_o.congestion_control;
            p.max_rate_bps = f.max_rate_bps; // the test's cap, or a paired upload's pace
            p.seed = f.seed;
            const tcp::endpoint target(m_provider.address(), f.port);
            asio::co_spawn(m_ex, run_agent_flow(m_ex, target, p),
                           [self = shared_from_this(), spec = f.spec, paired](std::exception_ptr e,
                                                                              flow_report r) {
                               if (e) {
                                   // run_agent_flow reports failures in its report; an
                                   // exception here is a bug, recorded as a local error.
                                   log_coroutine_failure{"agent flow"}(e);
                                   r = flow_report{};
                                   r.kind = spec.kind;
                                   r.end = flow_end::error;
                               }
                               self->flow_finished(spec, paired, r);
                           });
        }
    }

    void flow_finished(const proto::flow_spec& f, bool paired, const flow_report& r) {
        if (m_core.finished())
            return; // the test already ended; this flow was abandoned
        ++m_done_flows;
        const double mbps = r.duration.count() > 0 ? static_cast<double>(r.window_bytes) * 8.0 /
                                                         static_cast<double>(r.duration.count())
                                                   : 0.0;
        say(fmt::format("[{:>2}/{}] {:<8} {:<7} {:<7}{} {:>9} {}", m_done_flows, m_run_flows,
                        proto::to_string(f.dir), proto::to_string(f.port), proto::to_string(f.kind),
                        paired ? " (paired)" : "         ",
                        r.role == proto::flow_role::leech ? fmt::format("{:.2f} Mbit/s", mbps)
                                                          : std::string("sent"),
                        proto::to_string(r.end)));
        apply(m_core.flow_done(clock::now(), f.index, to_measurement(r, f.index)));
    }

    void finish(result<proto::diff::test_data> outcome) {
        m_outcome.emplace(std::move(outcome));
        m_conn->close();
        m_timer.cancel();
        m_finished.cancel();
    }

    void say(const std::string& line) const {
        if (m_o.progress)
            m_o.progress(line);
    }

    asio::any_io_executor m_ex;
    std::shared_ptr<control_connection> m_conn;
    tcp::endpoint m_provider;
    const agent_options m_o; // a copy: abandoned flows may report after run_diff_test returned
    nego::agent m_core;
    asio::steady_timer m_timer;
    asio::steady_timer m_finished; // cancelled once m_outcome is set
    std::optional<result<proto::diff::test_data>> m_outcome;
    std::size_t m_run_flows = 0;
    std::size_t m_done_flows = 0;
};

} // namespace

asio::awaitable<result<test_report>> run_diff_test(asio::any_io_executor ex, tcp::endpoint provider,
                                                   const overlay::identity& self,
                                                   random_source& rng, agent_options o) {
    test_report report;
    report.role = "agent";
    report.started_unix_ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    report.peer_address = to_string(provider);
    report.congestion_control = o.congestion_control;
    report.max_rate_bps = o.schedule.max_rate_bps;
    report.max_test_bytes = o.schedule.max_test_bytes;
    report.time_budget_ms =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, o.schedule.time_budget.count()));
    std::array<std::uint8_t, 8> id{};
    rng.fill(id);
    report.test_id = to_hex(id);
    const auto t0 = clock::now();

    auto conn = co_await dial_control(ex, provider, self, rng,
                                      o.expected_peer ? &*o.expected_peer : nullptr, o.connection);
    if (!conn)
        co_return make_error(conn.err().code, to_string(provider) + ": " + conn.err().reason);
    report.peer_id = overlay::node_id_string((*conn)->peer());
    if (o.progress)
        o.progress(fmt::format("connected to {} (node {})", to_string(provider),
                               report.peer_id.substr(0, 16)));

    auto driver = std::make_shared<agent_driver>(ex, *conn, provider, rng, o);
    auto data = co_await driver->run();
    if (!data)
        co_return data.err();
    static_cast<proto::diff::test_data&>(report) = std::move(*data);
    report.duration_s = std::chrono::duration<double>(clock::now() - t0).count();
    co_return report;
}

} // namespace glasnode::node
