#include "node/diff/agent.hpp"

#include <map>

#include <fmt/format.h>

#include "node/endpoint.hpp"
#include "node/flow/flow.hpp"
#include "node/log.hpp"
#include "overlay/wire/core_messages.hpp"
#include "tests_proto/negotiation/agent.hpp"

namespace glasnode::node {
namespace {

namespace nego = proto::negotiation;
using clock = std::chrono::steady_clock;

std::vector<nego::flow_spec> to_specs(std::span<const proto::diff::planned_flow> planned) {
    std::vector<nego::flow_spec> out;
    out.reserve(planned.size());
    for (const auto& p : planned) {
        out.push_back({p.index, p.dir, p.port, p.kind, p.group,
                       static_cast<std::uint32_t>(p.duration.count())});
    }
    return out;
}

error refused_by_provider(const wire::error_message& e) {
    const auto code = static_cast<wire::wire_error>(e.code);
    const errc c = code == wire::wire_error::busy ? errc::busy
                   : code == wire::wire_error::unsupported_version ? errc::unsupported_version
                   : code == wire::wire_error::refused ? errc::invalid_argument
                                                       : errc::protocol_error;
    return make_error(c, "provider: " + e.reason);
}

class agent_run {
public:
    agent_run(asio::any_io_executor ex, control_connection& conn, tcp::endpoint provider,
              random_source& rng, const agent_options& o)
        : m_ex(std::move(ex)), m_conn(conn), m_provider(std::move(provider)), m_rng(rng), m_o(o) {}

    // One negotiated run of `planned`: the flows as both ends measured them.
    asio::awaitable<result<std::vector<measured_flow>>> run(
        std::span<const proto::diff::planned_flow> planned, std::string_view label) {
        const auto specs = to_specs(planned);
        auto grant = co_await negotiate(specs);
        if (!grant) co_return grant.err();
        std::map<std::uint16_t, nego::agent_flow> plan;
        for (auto& a : nego::plan_flows(grant->token, specs)) plan.emplace(a.spec.index, a);
        const auto slots = proto::diff::slots_of(planned);
        say(fmt::format("{}: {} flows in {} slots, about {:.0f} s", label, planned.size(),
                        slots.size(),
                        std::chrono::duration<double>(proto::diff::transfer_time(planned)).count()));

        std::vector<nego::flow_measurement> mine;
        std::size_t done = 0;
        for (const auto& slot : slots) {
            std::vector<flow_params> params;
            std::vector<tcp::endpoint> targets;
            for (const auto& f : slot) {
                const auto& a = plan.at(f.index);
                flow_params p;
                p.kind = f.kind;
                p.role = a.role;
                p.info_hash = a.info_hash;
                p.duration = f.duration;
                p.connect_timeout = m_o.connect_timeout;
                p.congestion_control = m_o.congestion_control;
                p.seed = m_rng.next_u64();
                params.push_back(std::move(p));
                targets.emplace_back(m_provider.address(), f.port == proto::test_port::bt
                                                               ? grant->bt_port
                                                               : grant->neutral_port);
            }
            auto reports = co_await run_slot(params, targets);
            for (std::size_t i = 0; i < slot.size(); ++i) {
                const auto& f = slot[i];
                const auto& r = reports[i];
                ++done;
                const double mbps =
                    r.duration.count() > 0
                        ? static_cast<double>(r.window_bytes) * 8.0 /
                              static_cast<double>(r.duration.count())
                        : 0.0;
                say(fmt::format("[{:>2}/{}] {:<8} {:<7} {:<7}{} {:>9} {}", done, planned.size(),
                                proto::to_string(f.dir), proto::to_string(f.port),
                                proto::to_string(f.kind), slot.size() > 1 ? " (paired)" : "         ",
                                r.role == proto::flow_role::leech ? fmt::format("{:.2f} Mbit/s", mbps)
                                                                  : std::string("sent"),
                                proto::to_string(r.end)));
                mine.push_back(to_measurement(r, f.index));
            }
            // Keep the control connection busy: the provider drops idle ones.
            if (auto st = co_await m_conn.send(wire::encode_message(wire::ping{m_rng.next_u64()}));
                !st)
                co_return st.err();
        }

        auto collect = nego::make_collect(mine);
        if (!collect) co_return collect.err();
        if (auto st = co_await m_conn.send(*collect); !st) co_return st.err();
        for (;;) {
            auto reply = co_await next_reply(m_o.reply_timeout);
            if (!reply) co_return reply.err();
            if (auto* r = std::get_if<nego::collect_reply>(&*reply))
                co_return match_measurements(specs, mine, r->measurements);
            if (auto* e = std::get_if<wire::error_message>(&*reply))
                co_return refused_by_provider(*e);
            // A late queue_status is harmless; anything else is out of order.
            if (!std::holds_alternative<nego::queue_status>(*reply))
                co_return make_error(errc::protocol_error, "provider sent a grant during collect");
        }
    }

private:
    void say(const std::string& line) const {
        if (m_o.progress) m_o.progress(line);
    }

    // The next provider message that is not a pong.
    asio::awaitable<result<nego::provider_reply>> next_reply(std::chrono::milliseconds timeout) {
        for (;;) {
            auto payload = co_await m_conn.receive(timeout);
            if (!payload) co_return payload.err();
            if (wire::decode_message<wire::pong>(*payload)) continue;
            co_return nego::decode_provider_reply(*payload);
        }
    }

    asio::awaitable<result<nego::grant>> negotiate(const std::vector<nego::flow_spec>& specs) {
        auto msg = nego::make_negotiate(specs);
        if (!msg) co_return msg.err();
        if (auto st = co_await m_conn.send(*msg); !st) co_return st.err();
        const auto until = clock::now() + m_o.queue_timeout;
        // The provider drops control connections that stay silent (its idle timeout); a wait in
        // its queue can last several tests, so ping while waiting.
        const auto keepalive = std::make_shared<asio::steady_timer>(m_ex);
        asio::co_spawn(m_ex, ping_until_cancelled(m_conn.shared_from_this(), keepalive,
                                                  m_o.queue_keepalive, m_rng.next_u64()),
                       log_coroutine_failure{"queue keepalive"});
        struct stop_pinging {
            std::shared_ptr<asio::steady_timer> timer;
            ~stop_pinging() { timer->cancel(); }
        } stop{keepalive};
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
            if (left <= std::chrono::milliseconds::zero())
                co_return make_error(errc::timeout, "no slot at the provider within " +
                                                        std::to_string(m_o.queue_timeout.count() /
                                                                       1000) +
                                                        " s");
            auto reply = co_await next_reply(left);
            if (!reply) co_return reply.err();
            if (auto* q = std::get_if<nego::queue_status>(&*reply)) {
                say(fmt::format("waiting for the provider: position {} of {}", q->position,
                                q->queue_length));
            } else if (auto* g = std::get_if<nego::grant>(&*reply)) {
                co_return *g;
            } else if (auto* e = std::get_if<wire::error_message>(&*reply)) {
                co_return refused_by_provider(*e);
            } else {
                co_return make_error(errc::protocol_error, "provider sent collect_reply unasked");
            }
        }
    }

    static asio::awaitable<void> ping_until_cancelled(std::shared_ptr<control_connection> conn,
                                                      std::shared_ptr<asio::steady_timer> timer,
                                                      std::chrono::milliseconds every,
                                                      std::uint64_t nonce) {
        for (;;) {
            timer->expires_after(every);
            boost::system::error_code ec;
            co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return; // cancelled: the wait in the queue is over
            if (!co_await conn->send(wire::encode_message(wire::ping{nonce++}))) co_return;
        }
    }

    // Runs the flows of one slot together; returns their reports in order.
    asio::awaitable<std::vector<flow_report>> run_slot(const std::vector<flow_params>& params,
                                                       const std::vector<tcp::endpoint>& targets) {
        std::vector<flow_report> reports(params.size());
        std::size_t pending = params.size();
        asio::steady_timer all_done(m_ex, asio::steady_timer::time_point::max());
        for (std::size_t i = 0; i < params.size(); ++i) {
            asio::co_spawn(m_ex, run_agent_flow(m_ex, targets[i], params[i]),
                           [&, i](std::exception_ptr, flow_report r) {
                               reports[i] = std::move(r);
                               if (--pending == 0) all_done.cancel();
                           });
        }
        if (pending > 0) {
            boost::system::error_code ec;
            co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_return reports;
    }

    asio::any_io_executor m_ex;
    control_connection& m_conn;
    tcp::endpoint m_provider;
    random_source& m_rng;
    const agent_options& m_o;
};

} // namespace

asio::awaitable<result<test_report>> run_diff_test(asio::any_io_executor ex, tcp::endpoint provider,
                                                   const overlay::identity& self,
                                                   random_source& rng, agent_options o) {
    test_report report;
    report.role = "agent";
    report.started_unix_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
    report.peer_address = to_string(provider);
    report.congestion_control = o.congestion_control;
    std::array<std::uint8_t, 8> id{};
    rng.fill(id);
    report.test_id = to_hex(id);
    const auto t0 = clock::now();

    auto conn = co_await dial_control(ex, provider, self, rng,
                                      o.expected_peer ? &*o.expected_peer : nullptr, o.connection);
    if (!conn) co_return make_error(conn.err().code, to_string(provider) + ": " + conn.err().reason);
    report.peer_id = overlay::node_id_string((*conn)->peer());
    if (o.progress)
        o.progress(fmt::format("connected to {} (node {})", to_string(provider),
                               report.peer_id.substr(0, 16)));

    agent_run runner(ex, **conn, provider, rng, o);
    const auto planned = proto::diff::make_schedule(o.schedule, rng);
    auto first = co_await runner.run(planned, "test");
    if (!first) {
        (*conn)->close();
        co_return first.err();
    }
    report.runs.push_back(std::move(*first));
    if (auto st = analyse_report(report); !st) co_return st.err();

    if (o.confirm && proto::needs_confirmation(report.analysis)) {
        std::vector<proto::diff::comparison_key> which;
        for (const auto& v : report.analysis.verdicts)
            if (proto::needs_confirmation(v)) which.push_back({v.dir, v.port});
        const auto rerun = proto::diff::make_confirmation(which, o.schedule, rng, 0, 0,
                                                         o.schedule.sequential_repetitions);
        auto second = co_await runner.run(rerun, "confirmation rerun");
        if (!second) {
            (*conn)->close();
            co_return second.err();
        }
        report.runs.push_back(std::move(*second));
        report.confirmed_keys.push_back(which);
        if (auto st = analyse_report(report); !st) co_return st.err();
    }
    (*conn)->close();
    report.duration_s = std::chrono::duration<double>(clock::now() - t0).count();
    co_return report;
}

} // namespace glasnode::node
