#include "sim/diff_harness.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"
#include "sim/event_loop.hpp"

namespace glasnode::sim {
namespace {

namespace nego = proto::negotiation;

constexpr nego::session_id control_session = 1;
constexpr std::uint32_t agent_node = 0;
constexpr std::uint32_t provider_node = 1;
constexpr std::uint32_t network_node = 2;

bytes encoded(const flow_measurement& m) {
    bytes out;
    wire::byte_sink sink(out);
    wire::packer pk(sink);
    proto::diff::encode_measurement(pk, m);
    return out;
}

bytes handshake_trace(const nego::flow_to_run& f) {
    bytes out(f.info_hash.begin(), f.info_hash.end());
    out.push_back(static_cast<std::uint8_t>(f.spec.kind));
    out.push_back(static_cast<std::uint8_t>(f.port >> 8));
    out.push_back(static_cast<std::uint8_t>(f.port));
    return out;
}

event_tag tag(event_kind kind, std::uint32_t node) {
    return {static_cast<std::uint16_t>(kind), node};
}

// The drivers of both cores and the network between them, on one loop. Holds pointers to
// itself in scheduled actions: neither copyable nor movable.
class diff_run {
public:
    explicit diff_run(const harness_options& o)
        : m_o(o), m_agent_random(splitmix_random::stream(o.seed, agent_node)),
          m_provider_random(splitmix_random::stream(o.seed, provider_node)),
          m_network_random(splitmix_random::stream(o.seed, network_node)),
          m_agent(o.agent, m_agent_random), m_provider(o.provider, m_provider_random),
          m_policy(o.policy) {}
    diff_run(const diff_run&) = delete;
    diff_run& operator=(const diff_run&) = delete;

    result<harness_result> run() {
        m_loop.at(m_loop.now(), tag(event_kind::agent_start, agent_node), {},
                  [this](bytes) { apply(m_agent.start(m_loop.now())); });
        m_loop.run_until(virtual_epoch + m_o.time_limit);
        if (!m_agent.finished()) {
            return make_error(errc::timeout, "the simulated test did not finish within " +
                                                 std::to_string(m_o.time_limit.count()) +
                                                 " s of virtual time");
        }
        m_result.ended_at = m_loop.elapsed();
        m_result.events = m_loop.executed();
        m_result.trace_hash = m_loop.trace();
        return std::move(m_result);
    }

private:
    bool provider_silent() const {
        return m_o.provider_silent_after &&
               m_loop.now() >= virtual_epoch + *m_o.provider_silent_after;
    }

    // Control channel, agent -> provider's node.
    void send_to_provider(bytes message) {
        m_loop.after(m_o.control_latency, tag(event_kind::to_provider, provider_node),
                     std::move(message), [this](bytes payload) {
                         if (m_provider_closed)
                             return;
                         // The node's control server answers pings itself (node/control).
                         if (auto ping = wire::decode_message<wire::ping>(payload)) {
                             send_to_agent(wire::encode_message(wire::pong{ping->nonce}), false);
                             return;
                         }
                         apply(m_provider.receive(m_loop.now(), control_session, payload));
                     });
    }

    // Control channel, provider's node -> agent.
    void send_to_agent(bytes message, bool close_after) {
        if (provider_silent())
            return;
        m_loop.after(m_o.control_latency, tag(event_kind::to_agent, agent_node), std::move(message),
                     [this](bytes payload) { apply(m_agent.receive(m_loop.now(), payload)); });
        if (close_after) {
            m_loop.after(m_o.control_latency, tag(event_kind::agent_closed, agent_node), {},
                         [this](bytes) {
                             apply(m_agent.on_closed(
                                 m_loop.now(), make_error(errc::closed, "the provider closed the "
                                                                        "control connection")));
                         });
        }
    }

    void apply(nego::agent_effects out) {
        for (auto& e : out) {
            if (auto* send = std::get_if<nego::agent_send>(&e)) {
                send_to_provider(std::move(send->message));
            } else if (auto* slot = std::get_if<nego::start_flows>(&e)) {
                start_slot(*slot);
            } else if (auto* done = std::get_if<nego::test_done>(&e)) {
                m_result.data = std::move(done->data);
                agent_finished();
            } else if (auto* failed = std::get_if<nego::test_failed>(&e)) {
                m_result.failure = std::move(failed->why);
                agent_finished();
            }
        }
        rearm(m_agent.next_expiry(), m_agent_timer, event_kind::agent_timer, agent_node,
              [this] { apply(m_agent.handle_expiry(m_loop.now())); });
    }

    void apply(nego::effects out) {
        for (auto& e : out) {
            if (auto* send = std::get_if<nego::send_message>(&e)) {
                send_to_agent(std::move(send->message), send->close_after);
            } else if (std::holds_alternative<nego::test_granted>(e)) {
                ++m_result.runs_granted;
            } else if (auto* finished = std::get_if<nego::test_finished>(&e)) {
                m_result.provider_tests.push_back(std::move(*finished));
            }
        }
        rearm(m_provider.next_expiry(), m_provider_timer, event_kind::provider_timer, provider_node,
              [this] { apply(m_provider.handle_expiry(m_loop.now())); });
    }

    struct timer {
        std::optional<event_id> id;
        time_point at{};
    };

    // One timer per core, at its next_expiry (unchanged when the expiry is).
    template <class Fire>
    void rearm(std::optional<time_point> next, timer& t, event_kind kind, std::uint32_t node,
               Fire fire) {
        if (t.id && next && *next == t.at)
            return;
        if (t.id)
            m_loop.cancel(*t.id);
        t.id.reset();
        if (!next)
            return;
        t.at = *next;
        t.id = m_loop.at(*next, tag(kind, node), {}, [&t, fire](bytes) {
            t.id.reset();
            fire();
        });
    }

    void agent_finished() {
        m_result.agent_finished_at = m_loop.elapsed();
        // The driver stops the test's flows and closes the control connection.
        for (event_id id : m_flow_events)
            m_loop.cancel(id);
        m_flow_events.clear();
        m_loop.after(m_o.control_latency, tag(event_kind::provider_closed, provider_node), {},
                     [this](bytes) {
                         if (m_provider_closed)
                             return;
                         m_provider_closed = true;
                         apply(m_provider.on_session_closed(m_loop.now(), control_session));
                     });
    }

    void start_slot(const nego::start_flows& slot) {
        auto modelled = model_slot(slot.flows, m_o.path, m_policy, m_o.timeouts, m_network_random,
                                   m_o.agent.schedule.max_rate_bps);
        // A classifier that remembers endpoints learns the ports BitTorrent reached in this slot.
        if (m_policy.remember_endpoints) {
            for (std::size_t i = 0; i < slot.flows.size(); ++i) {
                const auto& f = slot.flows[i];
                auto& seen = m_policy.remembered_ports;
                if (f.spec.kind == proto::flow_kind::bt && modelled[i].handshake_at &&
                    std::find(seen.begin(), seen.end(), f.port) == seen.end())
                    seen.push_back(f.port);
            }
        }
        for (std::size_t i = 0; i < slot.flows.size(); ++i) {
            const nego::flow_to_run& f = slot.flows[i];
            modelled_flow& m = modelled[i];
            const time_point started = m_loop.now();
            const event_id agent_end = m_loop.after(
                m.agent_done, tag(event_kind::agent_flow_end, agent_node), encoded(m.agent),
                [this, index = f.spec.index, measurement = m.agent](bytes) {
                    apply(m_agent.flow_done(m_loop.now(), index, measurement));
                });
            m_flow_events.push_back(agent_end);
            if (m.unidentified_at) {
                m_flow_events.push_back(
                    m_loop.after(*m.unidentified_at, tag(event_kind::unidentified, provider_node),
                                 handshake_trace(f), [this, resets = m.unidentified_resets](bytes) {
                                     m_provider.on_unidentified_connection(
                                         m_loop.now(), control_session, resets, false);
                                 }));
            }
            if (!m.handshake_at)
                continue;
            m_flow_events.push_back(m_loop.after(
                *m.handshake_at, tag(event_kind::handshake, provider_node), handshake_trace(f),
                [this, f, agent_end, provider_end = started + m.provider_done,
                 measurement = std::move(m.provider)](bytes) {
                    on_handshake(f, agent_end, provider_end, measurement);
                }));
        }
    }

    void on_handshake(const nego::flow_to_run& f, event_id agent_end, time_point provider_end,
                      const flow_measurement& measurement) {
        std::optional<proto::test_port> port;
        if (f.port == m_o.provider.bt_port)
            port = proto::test_port::bt;
        else if (f.port == m_o.provider.neutral_port)
            port = proto::test_port::neutral;
        const bool accepted =
            port && std::holds_alternative<nego::flow_assignment>(
                        m_provider.authorize_flow(m_loop.now(), f.spec.kind, f.info_hash, *port));
        if (!accepted) {
            // The test port closes without answering: the agent's end learns it half an RTT on.
            m_loop.cancel(agent_end);
            flow_measurement refused = refused_at_handshake(f, m_o.path);
            m_flow_events.push_back(
                m_loop.after(m_o.path.rtt / 2, tag(event_kind::agent_flow_end, agent_node),
                             encoded(refused), [this, index = f.spec.index, refused](bytes) {
                                 apply(m_agent.flow_done(m_loop.now(), index, refused));
                             }));
            return;
        }
        m_flow_events.push_back(m_loop.at(
            provider_end, tag(event_kind::provider_flow_end, provider_node), encoded(measurement),
            [this, hash = f.info_hash, measurement](bytes) {
                // A report the provider no longer wants (its test is over) is dropped, as the
                // node's provider service drops it.
                if (auto out = m_provider.on_flow_finished(m_loop.now(), hash, measurement))
                    apply(std::move(*out));
            }));
    }

    const harness_options& m_o;
    splitmix_random m_agent_random;
    splitmix_random m_provider_random;
    splitmix_random m_network_random;
    event_loop m_loop;
    nego::agent m_agent;
    nego::provider m_provider;
    timer m_agent_timer;
    timer m_provider_timer;
    std::vector<event_id> m_flow_events;
    path_policy m_policy; // m_o.policy with what it has learnt so far (remembered ports)
    bool m_provider_closed = false;
    harness_result m_result;
};

} // namespace

result<harness_result> run_diff_test(const harness_options& options) {
    diff_run run(options);
    return run.run();
}

} // namespace glasnode::sim
