#include "tests_proto/negotiation/agent.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace glasnode::proto::negotiation {

result<bytes> make_negotiate(std::span<const flow_spec> schedule, const schedule_bounds& bounds,
                             std::uint32_t test_version, std::uint64_t max_rate_bps) {
    if (schedule.size() > max_schedule_flows) {
        return make_error(errc::invalid_argument, "schedule has more than " +
                                                      std::to_string(max_schedule_flows) +
                                                      " flows");
    }
    if (auto wall = validate_schedule(schedule, bounds); !wall)
        return wall.err();
    negotiate m;
    m.test_version = test_version;
    m.schedule.assign(schedule.begin(), schedule.end());
    m.max_rate_bps = max_rate_bps;
    return wire::encode_message(m);
}

result<bytes> make_collect(std::vector<flow_measurement> measurements) {
    if (measurements.size() > max_schedule_flows) {
        return make_error(errc::limit_exceeded, std::to_string(measurements.size()) +
                                                    " measurements exceed " +
                                                    std::to_string(max_schedule_flows));
    }
    const std::size_t budget = sample_budget(measurements.size());
    for (flow_measurement& m : measurements) {
        fit_samples(m, budget);
        if (auto s = check_measurement(m); !s)
            return s.err();
    }
    return wire::encode_message(collect{std::move(measurements)});
}

bytes make_cancel() {
    return wire::encode_message(cancel{});
}

result<provider_reply> decode_provider_reply(byte_view payload, const wire::decode_limits& limits) {
    static const wire::message_registry accepted = provider_to_agent_registry();
    auto env = wire::decode_envelope(payload, accepted, limits);
    if (!env)
        return env.err();
    const auto typed = [&env]<class M>() -> result<provider_reply> {
        auto m = wire::decode_body<M>(*env);
        if (!m)
            return m.err();
        return provider_reply{std::move(*m)};
    };
    switch (env->type()) {
    case queue_status::type_id:
        return typed.operator()<queue_status>();
    case grant::type_id:
        return typed.operator()<grant>();
    case wire::error_message::type_id:
        return typed.operator()<wire::error_message>();
    default:
        return typed.operator()<collect_reply>();
    }
}

std::vector<agent_flow> plan_flows(const token_t& token, std::span<const flow_spec> schedule) {
    std::vector<agent_flow> out;
    out.reserve(schedule.size());
    for (const flow_spec& f : schedule)
        out.push_back(agent_flow{f, agent_role(f.dir), flow_info_hash(token, f.index)});
    return out;
}

} // namespace glasnode::proto::negotiation

// g++ 12 at -O2 reports the vectors inside test_done as maybe-uninitialized whenever any
// alternative is moved into an agent_effect: a false positive in its std::variant analysis
// (GCC bug 105593 and its relatives), which clang and the sanitizer builds do not share.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace glasnode::proto::negotiation {

namespace {

std::string seconds(std::chrono::milliseconds d) {
    return std::to_string(d.count() / 1000) + " s";
}

} // namespace

agent::agent(agent_options options, random_source& random)
    : m_options(std::move(options)), m_random(random) {
    using std::chrono::milliseconds;
    m_options.keepalive = std::max(m_options.keepalive, milliseconds{100});
    m_options.silence_timeout = std::max(m_options.silence_timeout, m_options.keepalive);
}

agent::~agent() = default;

bool agent::live() const noexcept {
    return m_phase == phase::negotiating || m_phase == phase::running ||
           m_phase == phase::collecting;
}

agent_effects agent::start(time_point now) {
    agent_effects out;
    if (m_phase != phase::idle)
        return out;
    m_last_heard = now;
    m_next_ping = now + m_options.keepalive;
    m_data.pairing = m_options.schedule.pairing;
    negotiate_run(now, diff::make_schedule(m_options.schedule, m_random), out);
    return out;
}

void agent::send(bytes message, time_point now, agent_effects& out) {
    out.push_back(agent_send{std::move(message)});
    // Whatever is sent keeps the control connection busy: the next ping is due a keepalive later.
    m_next_ping = now + m_options.keepalive;
}

void agent::fail(error why, agent_effects& out) {
    m_phase = phase::failed;
    m_pending.clear();
    out.push_back(test_failed{std::move(why)});
}

bool agent::paired_from_the_start() const noexcept {
    return m_options.schedule.pairing == diff::direction_pairing::together ||
           (m_run > 0 && m_data.directions_together);
}

void agent::negotiate_run(time_point now, std::vector<flow_spec> schedule, agent_effects& out) {
    if (paired_from_the_start()) {
        if (diff::join_directions(schedule, 0) > 0)
            m_data.directions_together = true;
    }
    auto msg = make_negotiate(schedule, m_options.bounds, m_options.test_version,
                              m_options.schedule.max_rate_bps);
    if (!msg) {
        fail(msg.err(), out);
        return;
    }
    m_schedule = std::move(schedule);
    m_slots = diff::slots_of(m_schedule);
    m_slot = 0;
    m_mine.clear();
    m_pending.clear();
    m_phase = phase::negotiating;
    m_queue_deadline = now + m_options.queue_timeout;
    send(std::move(*msg), now, out);
}

agent_effects agent::receive(time_point now, byte_view payload) {
    agent_effects out;
    expire(now, out);
    if (!live())
        return out;
    m_last_heard = now;
    if (wire::decode_message<wire::pong>(payload))
        return out;
    auto reply = decode_provider_reply(payload);
    if (!reply) {
        fail(make_error(errc::protocol_error, "provider sent " + reply.err().describe()), out);
        return out;
    }
    if (auto* e = std::get_if<wire::error_message>(&*reply)) {
        fail(make_error(wire::to_errc(e->code), "provider: " + e->reason), out);
        return out;
    }
    if (auto* q = std::get_if<queue_status>(&*reply)) {
        // A late position report (sent just before the grant) is harmless in any phase.
        if (m_phase == phase::negotiating)
            out.push_back(queued{q->position, q->queue_length});
        return out;
    }
    if (auto* g = std::get_if<grant>(&*reply)) {
        if (m_phase != phase::negotiating) {
            fail(make_error(errc::protocol_error, "provider sent a grant during the test"), out);
            return out;
        }
        on_grant(now, *g, out);
        return out;
    }
    const auto& r = std::get<collect_reply>(*reply);
    if (m_phase != phase::collecting) {
        fail(make_error(errc::protocol_error, "provider sent collect_reply unasked"), out);
        return out;
    }
    on_collect_reply(now, r, out);
    return out;
}

void agent::on_grant(time_point now, const grant& g, agent_effects& out) {
    if (g.bt_port == 0 || g.neutral_port == 0) {
        fail(make_error(errc::protocol_error, "provider granted a test without its test ports"),
             out);
        return;
    }
    m_grant = g;
    m_phase = phase::running;
    if (m_run == 0)
        m_started = now; // the time budget counts the test, not its wait in the provider's queue
    out.push_back(
        run_started{m_run, m_schedule.size(), m_slots.size(), diff::transfer_time(m_schedule)});
    start_slot(now, out);
}

void agent::start_slot(time_point now, agent_effects& out) {
    if (m_slot >= m_slots.size()) {
        send_collect(now, out);
        return;
    }
    if (m_run > 0 && !rerun_slot_fits(m_slots[m_slot])) {
        // Reported as never run, so both ends' records say why these flows have no data.
        for (const flow_spec& f : m_slots[m_slot]) {
            flow_measurement m;
            m.index = f.index;
            m.role = agent_role(f.dir);
            m.end = flow_end::not_run;
            m_mine.push_back(std::move(m));
        }
        ++m_slot;
        start_slot(now, out);
        return;
    }
    const auto& slot = m_slots[m_slot];
    start_flows s{m_run, m_slot, {}};
    std::uint32_t longest = 0;
    for (const agent_flow& a : plan_flows(m_grant.token, slot)) {
        flow_to_run f;
        f.spec = a.spec;
        f.role = a.role;
        f.info_hash = a.info_hash;
        f.port = a.spec.port == test_port::bt ? m_grant.bt_port : m_grant.neutral_port;
        f.seed = m_random.next_u64();
        f.max_rate_bps = m_options.schedule.max_rate_bps;
        const std::uint64_t pace = m_data.paired_upload_pace_bps;
        if (pace > 0 && slot.size() > 1 && a.spec.dir == direction::upload)
            f.max_rate_bps = f.max_rate_bps == 0 ? pace : std::min(f.max_rate_bps, pace);
        s.flows.push_back(f);
        m_pending.push_back(a.spec.index);
        longest = std::max(longest, a.spec.duration_ms);
    }
    m_slot_deadline = now + std::chrono::milliseconds(longest) + m_options.flow_grace;
    out.push_back(std::move(s));
}

bool agent::rerun_slot_fits(const std::vector<flow_spec>& slot) {
    const diff::schedule_params& p = m_options.schedule;
    using diff::serves;
    auto needed = [&](const flow_spec& f) {
        return std::any_of(m_confirming.begin(), m_confirming.end(),
                           [&](const diff::comparison_key& k) { return serves(f, k); });
    };
    // A slot whose comparisons were all given up already is not worth its bytes either.
    bool fits = std::any_of(slot.begin(), slot.end(), needed);
    if (fits && p.max_test_bytes > 0 && p.max_rate_bps > 0) {
        std::uint64_t used = diff::agent_bytes(m_data), worst = 0;
        for (const flow_measurement& m : m_mine)
            used += diff::wire_bytes(m);
        for (const flow_spec& f : slot)
            worst += diff::flow_byte_bound(f.duration_ms, p.max_rate_bps);
        fits = used + worst <= p.max_test_bytes;
    }
    if (fits)
        return true;
    // Not run (its flows are not_run): whatever it would have confirmed stays unconfirmed.
    for (const flow_spec& f : slot) {
        for (auto it = m_confirming.begin(); it != m_confirming.end();) {
            if (serves(f, *it)) {
                diff::give_up_confirmation(m_data, *it);
                it = m_confirming.erase(it);
            } else {
                ++it;
            }
        }
    }
    return false;
}

agent_effects agent::flow_done(time_point now, std::uint16_t index, flow_measurement measurement) {
    agent_effects out;
    expire(now, out);
    if (m_phase != phase::running)
        return out;
    const auto it = std::find(m_pending.begin(), m_pending.end(), index);
    if (it == m_pending.end())
        return out;
    m_pending.erase(it);
    measurement.index = index;
    m_mine.push_back(std::move(measurement));
    if (m_pending.empty()) {
        ++m_slot;
        decide_pairing();
        start_slot(now, out);
    }
    return out;
}

namespace {

// The rate this end saw of a completed flow, bit/s: a leech's window, a seed's payload over the
// flow's duration (a seed keeps no window; its payload includes the requests still being served
// at the end, a few percent).
double own_rate_bps(const flow_measurement& m, const flow_spec& f) {
    if (m.end != flow_end::completed)
        return 0.0;
    if (m.role == flow_role::leech)
        return diff::window_rate_bps(m);
    if (f.duration_ms == 0)
        return 0.0;
    return static_cast<double>(m.payload_bytes) * 8e3 / static_cast<double>(f.duration_ms);
}

} // namespace

void agent::decide_pairing() {
    if (m_run != 0 || m_pairing_decided ||
        m_options.schedule.pairing != diff::direction_pairing::automatic)
        return;
    std::optional<double> up, down; // the first completed control flow of each direction
    std::optional<double> steady;   // the download's (the agent is its receiver)
    for (const flow_measurement& m : m_mine) {
        const auto spec = std::find_if(m_schedule.begin(), m_schedule.end(),
                                       [&](const flow_spec& f) { return f.index == m.index; });
        if (spec == m_schedule.end() || spec->kind != flow_kind::control ||
            m.end != flow_end::completed)
            continue;
        std::optional<double>& rate = spec->dir == direction::upload ? up : down;
        if (rate)
            continue;
        rate = own_rate_bps(m, *spec);
        if (spec->dir == direction::download)
            steady = diff::steady_fraction(m.samples);
    }
    if (!up || !down)
        return; // not yet (or one direction only): apart so far
    m_pairing_decided = true;
    m_data.pairing_upload_bps = *up;
    m_data.pairing_download_bps = *down;
    m_data.pairing_steady_fraction = steady;
    if (steady && *steady < diff::steady_min_fraction)
        return; // cross traffic (or something like it) on the path: apart
    // Unpaced on a symmetric enough path; on a narrow uplink with the uploads paced below it.
    const std::uint64_t pace = diff::paired_upload_pace_bps(*up, *down);
    if ((!diff::paths_allow_pairing(*up, *down) && pace == 0) || m_slot >= m_slots.size())
        return;
    if (diff::join_directions(m_schedule, m_slots[m_slot].front().group) > 0) {
        m_data.paired_upload_pace_bps = pace;
        m_data.directions_together = true;
        m_slots = diff::slots_of(m_schedule);
    }
}

void agent::send_collect(time_point now, agent_effects& out) {
    auto msg = make_collect(m_mine);
    if (!msg) {
        fail(msg.err(), out);
        return;
    }
    m_phase = phase::collecting;
    m_reply_deadline = now + m_options.reply_timeout;
    send(std::move(*msg), now, out);
}

void agent::on_collect_reply(time_point now, const collect_reply& r, agent_effects& out) {
    m_data.runs.push_back(diff::match_measurements(m_schedule, m_mine, r.measurements));
    m_data.unidentified.resize(m_data.runs.size() - 1);
    m_data.unidentified.push_back(r.unidentified);
    if (m_run > 0)
        m_data.confirmed_keys.push_back(m_confirming);
    if (auto st = diff::analyse_runs(m_data); !st) {
        fail(st.err(), out);
        return;
    }
    if (m_run == 0 && !m_slots.empty()) {
        using std::chrono::milliseconds;
        const auto spent = std::chrono::duration_cast<milliseconds>(now - m_started);
        m_slot_overhead = std::max(milliseconds{0}, spent - diff::transfer_time(m_schedule)) /
                          static_cast<milliseconds::rep>(m_slots.size());
    }
    if (m_run == 0 && m_options.confirm) {
        // Accusations first: when the byte budget cannot hold every rerun, an inconclusive
        // comparison gives way to a positive one.
        auto wanted = diff::comparisons_to_confirm(m_data.analysis);
        auto severity = [&](const diff::comparison_key& k) {
            const port_verdict* v = diff::find_verdict(m_data.analysis, k);
            return v == nullptr || v->outcome == verdict::inconclusive ? 1 : 0;
        };
        std::stable_sort(wanted.begin(), wanted.end(),
                         [&](const auto& a, const auto& b) { return severity(a) < severity(b); });
        // One rerun per direction where both ports accuse on one basis (pool_confirmations).
        m_data.pooled = diff::pool_confirmations(m_data.analysis, wanted);
        const auto moved = first_run_shapes();
        // A port verdict's rerun needs only the port comparison's control flows.
        const auto controls_only = diff::controls_only_confirmations(m_data.analysis, wanted);
        auto fitted = diff::fit_confirmation(wanted, m_options.schedule, diff::agent_bytes(m_data),
                                             moved, controls_only);
        m_confirming = std::move(fitted.rerun);
        if (!fitted.skipped.empty()) {
            for (const diff::comparison_key& k : fitted.skipped)
                diff::give_up_confirmation(m_data, k);
            if (auto st = diff::analyse_runs(m_data); !st) {
                fail(st.err(), out);
                return;
            }
        }
        if (!m_confirming.empty()) {
            m_run = 1;
            negotiate_run(now, rerun_schedule(now, m_confirming, controls_only), out);
            return;
        }
    }
    if (m_run == 1 && m_options.confirm && run_a_second_rerun(now, out))
        return;
    m_phase = phase::done;
    out.push_back(test_done{m_data});
}

std::vector<diff::shape_bytes> agent::first_run_shapes() const {
    std::vector<diff::shape_bytes> moved;
    for (const diff::measured_flow& f : m_data.runs.front())
        moved.push_back({f.spec.dir, f.spec.port, f.spec.kind, diff::wire_bytes(f.agent)});
    return moved;
}

bool agent::run_a_second_rerun(time_point now, agent_effects& out) {
    std::vector<diff::comparison_key> own;
    for (const diff::pooled_confirmation& p : m_data.pooled) {
        const port_verdict* v = diff::find_verdict(m_data.analysis, p.pooled);
        if (v != nullptr && !v->confirmed)
            own.push_back(p.pooled);
    }
    std::erase_if(m_data.pooled,
                  [&](const diff::pooled_confirmation& p) { return diff::holds(own, p.pooled); });
    // A tie-break reruns what the positive run's verdict needs: a port verdict's, control flows
    // only.
    const auto ties = diff::tie_breaks_wanted(m_data);
    own.insert(own.end(), ties.begin(), ties.end());
    std::vector<diff::comparison_key> controls_only;
    for (const test_analysis& run : m_data.run_analyses) {
        const auto port_verdicts = diff::controls_only_confirmations(run, ties);
        controls_only.insert(controls_only.end(), port_verdicts.begin(), port_verdicts.end());
    }
    if (own.empty())
        return false;
    auto fitted = diff::fit_confirmation(own, m_options.schedule, diff::agent_bytes(m_data),
                                         first_run_shapes(), controls_only);
    for (const diff::comparison_key& k : fitted.skipped)
        diff::give_up_confirmation(m_data, k);
    if (auto st = diff::analyse_runs(m_data); !st) {
        fail(st.err(), out);
        return true;
    }
    m_confirming = std::move(fitted.rerun);
    if (m_confirming.empty())
        return false;
    m_run = 2;
    negotiate_run(now, rerun_schedule(now, m_confirming, controls_only), out);
    return true;
}

std::vector<flow_spec> agent::rerun_schedule(time_point now,
                                             std::span<const diff::comparison_key> which,
                                             std::span<const diff::comparison_key> controls_only) {
    auto schedule =
        diff::make_confirmation(which, m_options.schedule, m_random, 0, 0, controls_only);
    // As negotiate_run will run it.
    auto joined = schedule;
    if (paired_from_the_start())
        diff::join_directions(joined, 0);
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - m_started);
    const auto d = diff::rerun_flow_duration(m_options.schedule, elapsed, m_slot_overhead,
                                             diff::slots_of(joined).size());
    for (flow_spec& f : schedule)
        f.duration_ms = static_cast<std::uint32_t>(d.count());
    return schedule;
}

agent_effects agent::on_closed(time_point now, error why) {
    agent_effects out;
    expire(now, out);
    if (live())
        fail(std::move(why), out);
    return out;
}

agent_effects agent::cancel(time_point now) {
    agent_effects out;
    expire(now, out);
    if (!live())
        return out;
    send(make_cancel(), now, out);
    fail(make_error(errc::closed, "test cancelled"), out);
    return out;
}

std::optional<time_point> agent::next_expiry() const noexcept {
    if (!live())
        return std::nullopt;
    time_point next = std::min(m_next_ping, m_last_heard + m_options.silence_timeout);
    if (m_phase == phase::negotiating)
        next = std::min(next, m_queue_deadline);
    if (m_phase == phase::running && !m_pending.empty())
        next = std::min(next, m_slot_deadline);
    if (m_phase == phase::collecting)
        next = std::min(next, m_reply_deadline);
    return next;
}

void agent::expire(time_point now, agent_effects& out) {
    if (!live())
        return;
    if (now >= m_last_heard + m_options.silence_timeout) {
        fail(make_error(errc::timeout, "provider stopped answering: nothing on the control "
                                       "connection for " +
                                           seconds(m_options.silence_timeout)),
             out);
        return;
    }
    if (m_phase == phase::negotiating && now >= m_queue_deadline) {
        send(make_cancel(), now, out);
        fail(make_error(errc::timeout,
                        "no slot at the provider within " + seconds(m_options.queue_timeout)),
             out);
        return;
    }
    if (m_phase == phase::running && !m_pending.empty() && now >= m_slot_deadline) {
        fail(make_error(errc::timeout, std::to_string(m_pending.size()) + " flow(s) of slot " +
                                           std::to_string(m_slot + 1) +
                                           " not reported by the flow engine in time"),
             out);
        return;
    }
    if (m_phase == phase::collecting && now >= m_reply_deadline) {
        fail(make_error(errc::timeout, "no collect_reply from the provider within " +
                                           seconds(m_options.reply_timeout)),
             out);
        return;
    }
    if (now >= m_next_ping)
        send(wire::encode_message(wire::ping{m_ping_nonce++}), now, out);
}

agent_effects agent::handle_expiry(time_point now) {
    agent_effects out;
    expire(now, out);
    return out;
}

} // namespace glasnode::proto::negotiation
