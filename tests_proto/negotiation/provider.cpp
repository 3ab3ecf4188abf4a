#include "tests_proto/negotiation/provider.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "overlay/wire/core_messages.hpp"

namespace glasnode::proto::negotiation {

namespace {

// Draws that may collide with a token in use before the provider gives up on a grant. A
// collision of 128-bit random tokens only happens with a broken random source.
constexpr int token_draws = 8;

send_message error_to(session_id session, wire::wire_error code, std::string reason,
                      bool close_after = false) {
    wire::error_message m;
    m.code = static_cast<std::uint16_t>(code);
    m.reason = std::move(reason);
    return send_message{session, wire::encode_message(m), close_after};
}

} // namespace

std::string_view to_string(finish_reason r) noexcept {
    switch (r) {
    case finish_reason::completed:
        return "completed";
    case finish_reason::expired:
        return "expired";
    case finish_reason::session_closed:
        return "session-closed";
    case finish_reason::cancelled:
        return "cancelled";
    }
    return "unknown";
}

std::string_view to_string(flow_refusal r) noexcept {
    switch (r) {
    case flow_refusal::unknown_token:
        return "unknown token";
    case flow_refusal::expired:
        return "test expired";
    case flow_refusal::finished:
        return "test finished";
    case flow_refusal::already_used:
        return "flow already used";
    case flow_refusal::wrong_kind:
        return "wrong flow kind";
    case flow_refusal::wrong_port:
        return "wrong test port";
    }
    return "unknown";
}

provider::provider(provider_options options, random_source& random)
    : m_options(std::move(options)), m_random(random), m_accepted(agent_to_provider_registry()) {
    m_options.bounds.max_flows = std::min(m_options.bounds.max_flows, max_schedule_flows);
    m_options.max_queue = std::min<std::size_t>(m_options.max_queue, max_queue_report);
    m_options.max_active = std::max<std::size_t>(m_options.max_active, 1);
}

provider::~provider() = default;

effects provider::receive(time_point now, session_id session, byte_view payload) {
    auto env = wire::decode_envelope(payload, m_accepted);
    if (!env) {
        effects out;
        out.push_back(
            error_to(session, wire::to_wire_error(env.err().code), env.err().reason, true));
        return out;
    }
    switch (env->type()) {
    case negotiate::type_id: {
        auto m = wire::decode_body<negotiate>(*env);
        if (m)
            return on_negotiate(now, session, *m);
        return {error_to(session, wire::to_wire_error(m.err().code), m.err().reason, true)};
    }
    case collect::type_id: {
        auto m = wire::decode_body<collect>(*env);
        if (m)
            return on_collect(now, session, *m);
        return {error_to(session, wire::to_wire_error(m.err().code), m.err().reason, true)};
    }
    case cancel::type_id: {
        auto m = wire::decode_body<cancel>(*env);
        if (m)
            return on_cancel(now, session);
        return {error_to(session, wire::to_wire_error(m.err().code), m.err().reason, true)};
    }
    default:
        return {error_to(session, wire::wire_error::protocol, "not a negotiation request", true)};
    }
}

effects provider::on_negotiate(time_point now, session_id session, const negotiate& message) {
    effects out;
    expire(now, out);
    if (find_running(session) != nullptr || find_waiting(session) != m_queue.end()) {
        out.push_back(error_to(session, wire::wire_error::refused,
                               "this session already has a test queued or running"));
        return out;
    }
    if (message.test_name != diff_test_name) {
        out.push_back(
            error_to(session, wire::wire_error::refused,
                     "unknown test: this provider serves " + std::string(diff_test_name)));
        return out;
    }
    if (message.test_version != m_options.test_version) {
        out.push_back(error_to(session, wire::wire_error::unsupported_version,
                               "test version " + std::to_string(message.test_version) +
                                   " not supported (this provider runs version " +
                                   std::to_string(m_options.test_version) + ")"));
        return out;
    }
    auto wall = validate_schedule(message.schedule, m_options.bounds);
    if (!wall) {
        out.push_back(
            error_to(session, wire::wire_error::refused, "schedule refused: " + wall.err().reason));
        return out;
    }
    waiting_test test{session, message.schedule, *wall, message.max_rate_bps};
    if (m_active.size() < m_options.max_active && m_queue.empty()) {
        start(now, std::move(test), out);
        return out;
    }
    if (m_queue.size() >= m_options.max_queue) {
        out.push_back(error_to(session, wire::wire_error::busy,
                               "queue full: " + std::to_string(m_queue.size()) +
                                   " tests waiting, try later"));
        return out;
    }
    m_queue.push_back(std::move(test));
    const auto length = static_cast<std::uint32_t>(m_queue.size());
    out.push_back(send_message{session, wire::encode_message(queue_status{length, length})});
    return out;
}

effects provider::on_collect(time_point now, session_id session, const collect& message) {
    effects out;
    expire(now, out);
    running_test* test = find_running(session);
    if (test == nullptr) {
        out.push_back(error_to(session, wire::wire_error::refused,
                               "no running test to collect on this session"));
        return out;
    }
    if (test->held_collect) {
        out.push_back(error_to(session, wire::wire_error::refused,
                               "this test's collect is already being answered"));
        return out;
    }
    if (has_unreported(*test)) {
        test->held_collect = message.measurements;
        test->collect_deadline = std::min(now + m_options.collect_wait, test->deadline);
        return out;
    }
    answer_collect(static_cast<std::size_t>(test - m_active.data()), message.measurements, out);
    fill_slots(now, out);
    return out;
}

flow_measurement provider::unreported(const flow_state& f) {
    flow_measurement m;
    m.index = f.spec.index;
    m.role = provider_role(f.spec.dir);
    m.end = flow_end::not_run;
    return m;
}

namespace {

// The counts travel as 32-bit values: they stop at the top instead of wrapping.
void saturating_add(std::uint32_t& into, std::uint32_t n) {
    into = n > std::numeric_limits<std::uint32_t>::max() - into
               ? std::numeric_limits<std::uint32_t>::max()
               : into + n;
}

} // namespace

diff::unidentified_connections provider::unidentified_of(const running_test& test) {
    // An authorised flow whose report is not in may have reset the agent for all we know: it
    // counts as a connection that could have, so that no reset is called forged on its word.
    diff::unidentified_connections u = test.unidentified;
    for (const flow_state& f : test.flows) {
        if (f.authorized && !f.measurement)
            saturating_add(u.could_reset_peer, 1);
    }
    return u;
}

void provider::answer_collect(std::size_t active_index,
                              std::vector<flow_measurement> agent_measurements, effects& out) {
    const running_test& test = m_active[active_index];
    collect_reply reply;
    reply.measurements.reserve(test.flows.size());
    for (const flow_state& f : test.flows)
        reply.measurements.push_back(f.measurement ? *f.measurement : unreported(f));
    reply.unidentified = unidentified_of(test);
    out.push_back(send_message{test.session, wire::encode_message(reply)});
    finish(active_index, finish_reason::completed, std::move(agent_measurements), out);
}

void provider::on_unidentified_connection(time_point now, session_id session,
                                          std::uint32_t resets_received, bool could_reset_peer) {
    running_test* test = find_running(session);
    if (test == nullptr || test->deadline <= now)
        return;
    saturating_add(test->unidentified.connections, 1);
    saturating_add(test->unidentified.resets_received, resets_received);
    saturating_add(test->unidentified.could_reset_peer, could_reset_peer ? 1 : 0);
}

bool provider::has_unreported(const running_test& test) noexcept {
    return std::any_of(test.flows.begin(), test.flows.end(),
                       [](const flow_state& f) { return f.authorized && !f.measurement; });
}

std::size_t provider::flows_unreported(session_id session) const noexcept {
    for (const running_test& t : m_active) {
        if (t.session == session)
            return static_cast<std::size_t>(
                std::count_if(t.flows.begin(), t.flows.end(),
                              [](const flow_state& f) { return f.authorized && !f.measurement; }));
    }
    return 0;
}

effects provider::on_cancel(time_point now, session_id session) {
    effects out;
    expire(now, out);
    withdraw(now, session, finish_reason::cancelled, out);
    return out;
}

effects provider::on_session_closed(time_point now, session_id session) {
    effects out;
    expire(now, out);
    withdraw(now, session, finish_reason::session_closed, out);
    // Nothing may be sent on a closed session.
    std::erase_if(out, [session](const effect& e) {
        const auto* s = std::get_if<send_message>(&e);
        return s != nullptr && s->session == session;
    });
    return out;
}

flow_authorization provider::authorize_flow(time_point now, flow_kind kind,
                                            const info_hash_t& info_hash,
                                            std::optional<test_port> port) {
    for (running_test& test : m_active) {
        for (flow_state& f : test.flows) {
            if (f.info_hash != info_hash)
                continue;
            if (now >= test.deadline)
                return flow_refusal::expired;
            if (f.spec.kind != kind)
                return flow_refusal::wrong_kind;
            if (port && f.spec.port != *port)
                return flow_refusal::wrong_port;
            if (f.authorized)
                return flow_refusal::already_used;
            f.authorized = true;
            return flow_assignment{test.session,  f.spec.index,
                                   f.spec,        provider_role(f.spec.dir),
                                   test.deadline, test.max_rate_bps};
        }
    }
    for (const remembered_test& r : m_remembered) {
        if (std::find(r.info_hashes.begin(), r.info_hashes.end(), info_hash) !=
            r.info_hashes.end()) {
            return r.reason == finish_reason::expired ? flow_refusal::expired
                                                      : flow_refusal::finished;
        }
    }
    return flow_refusal::unknown_token;
}

result<effects> provider::on_flow_finished(time_point now, session_id session, std::uint16_t index,
                                           flow_measurement measurement) {
    running_test* test = find_running(session);
    if (test == nullptr)
        return make_error(errc::not_found, "no running test on this session");
    if (now >= test->deadline)
        return make_error(errc::timeout, "the test's deadline has passed");
    auto it = std::find_if(test->flows.begin(), test->flows.end(),
                           [index](const flow_state& f) { return f.spec.index == index; });
    if (it == test->flows.end())
        return make_error(errc::not_found, "flow " + std::to_string(index) + " is not scheduled");
    if (!it->authorized) {
        return make_error(errc::invalid_argument,
                          "flow " + std::to_string(index) + " was never authorised");
    }
    if (it->measurement) {
        return make_error(errc::invalid_argument,
                          "flow " + std::to_string(index) + " was already reported");
    }
    measurement.index = index;
    measurement.role = provider_role(it->spec.dir);
    fit_samples(measurement, sample_budget(test->flows.size()));
    if (auto s = check_measurement(measurement); !s)
        return s.err();
    it->measurement = std::move(measurement);
    effects out;
    if (test->held_collect && !has_unreported(*test)) {
        auto agent_measurements = std::move(*test->held_collect);
        answer_collect(static_cast<std::size_t>(test - m_active.data()),
                       std::move(agent_measurements), out);
        fill_slots(now, out);
    }
    return out;
}

result<effects> provider::on_flow_finished(time_point now, const info_hash_t& info_hash,
                                           flow_measurement measurement) {
    for (const running_test& test : m_active) {
        for (const flow_state& f : test.flows) {
            if (f.info_hash == info_hash)
                return on_flow_finished(now, test.session, f.spec.index, std::move(measurement));
        }
    }
    return make_error(errc::not_found, "no running test has a flow with this info-hash");
}

std::optional<time_point> provider::next_expiry() const noexcept {
    std::optional<time_point> first;
    for (const running_test& t : m_active) {
        const time_point due =
            t.held_collect ? std::min(t.deadline, t.collect_deadline) : t.deadline;
        if (!first || due < *first)
            first = due;
    }
    return first;
}

effects provider::handle_expiry(time_point now) {
    effects out;
    expire(now, out);
    return out;
}

std::optional<std::uint32_t> provider::queue_position(session_id session) const noexcept {
    for (std::size_t i = 0; i < m_queue.size(); ++i) {
        if (m_queue[i].session == session)
            return static_cast<std::uint32_t>(i + 1);
    }
    return std::nullopt;
}

bool provider::is_running(session_id session) const noexcept {
    return std::any_of(m_active.begin(), m_active.end(),
                       [session](const running_test& t) { return t.session == session; });
}

provider::running_test* provider::find_running(session_id session) noexcept {
    for (running_test& t : m_active) {
        if (t.session == session)
            return &t;
    }
    return nullptr;
}

std::deque<provider::waiting_test>::iterator provider::find_waiting(session_id session) noexcept {
    return std::find_if(m_queue.begin(), m_queue.end(),
                        [session](const waiting_test& w) { return w.session == session; });
}

bool provider::token_in_use(const token_t& token) const noexcept {
    return std::any_of(m_active.begin(), m_active.end(),
                       [&token](const running_test& t) { return t.token == token; });
}

void provider::expire(time_point now, effects& out) {
    bool freed = false;
    for (std::size_t i = 0; i < m_active.size();) {
        if (m_active[i].deadline <= now) {
            out.push_back(error_to(m_active[i].session, wire::wire_error::refused,
                                   "test expired: its deadline passed before collect"));
            finish(i, finish_reason::expired, {}, out);
            freed = true;
        } else if (m_active[i].held_collect && m_active[i].collect_deadline <= now) {
            // The wait for the provider's own side is over: answer with what is in.
            auto agent_measurements = std::move(*m_active[i].held_collect);
            answer_collect(i, std::move(agent_measurements), out);
            freed = true;
        } else {
            ++i;
        }
    }
    if (freed)
        fill_slots(now, out);
}

void provider::start(time_point now, waiting_test test, effects& out) {
    token_t token{};
    bool fresh = false;
    for (int i = 0; i < token_draws && !fresh; ++i) {
        m_random.fill(token);
        fresh = !token_in_use(token);
    }
    if (!fresh) {
        out.push_back(error_to(test.session, wire::wire_error::internal,
                               "could not draw a fresh test token"));
        return;
    }
    running_test r;
    r.session = test.session;
    r.token = token;
    r.deadline = now + test.wall + m_options.deadline_margin;
    r.max_rate_bps = test.max_rate_bps;
    if (m_options.max_rate_bps > 0 &&
        (r.max_rate_bps == 0 || m_options.max_rate_bps < r.max_rate_bps))
        r.max_rate_bps = m_options.max_rate_bps;
    r.flows.reserve(test.schedule.size());
    for (const flow_spec& spec : test.schedule)
        r.flows.push_back(flow_state{spec, flow_info_hash(token, spec.index), false, std::nullopt});
    const auto valid_for = std::chrono::duration_cast<std::chrono::milliseconds>(
        test.wall + m_options.deadline_margin);
    out.push_back(send_message{
        test.session,
        wire::encode_message(grant{token, static_cast<std::uint64_t>(valid_for.count()),
                                   m_options.bt_port, m_options.neutral_port})});
    out.push_back(test_granted{test.session, token, r.deadline, std::move(test.schedule)});
    m_active.push_back(std::move(r));
}

void provider::finish(std::size_t active_index, finish_reason reason,
                      std::vector<flow_measurement> agent_measurements, effects& out) {
    running_test test = std::move(m_active[active_index]);
    m_active.erase(m_active.begin() + static_cast<std::ptrdiff_t>(active_index));

    test_finished done;
    done.session = test.session;
    done.token = test.token;
    done.reason = reason;
    done.agent_measurements = std::move(agent_measurements);
    done.unidentified = unidentified_of(test);
    done.schedule.reserve(test.flows.size());
    for (const flow_state& f : test.flows)
        done.schedule.push_back(f.spec);
    remembered_test memory;
    memory.reason = reason;
    for (flow_state& f : test.flows) {
        memory.info_hashes.push_back(f.info_hash);
        done.provider_measurements.push_back(f.measurement ? std::move(*f.measurement)
                                                           : unreported(f));
    }
    out.push_back(std::move(done));
    if (m_options.remembered_tests > 0) {
        m_remembered.push_back(std::move(memory));
        while (m_remembered.size() > m_options.remembered_tests)
            m_remembered.pop_front();
    }
}

void provider::fill_slots(time_point now, effects& out) {
    bool moved = false;
    while (m_active.size() < m_options.max_active && !m_queue.empty()) {
        waiting_test next = std::move(m_queue.front());
        m_queue.pop_front();
        start(now, std::move(next), out);
        moved = true;
    }
    if (moved)
        report_positions(0, out);
}

void provider::report_positions(std::size_t from, effects& out) {
    const auto length = static_cast<std::uint32_t>(m_queue.size());
    for (std::size_t i = from; i < m_queue.size(); ++i) {
        out.push_back(send_message{
            m_queue[i].session,
            wire::encode_message(queue_status{static_cast<std::uint32_t>(i + 1), length})});
    }
}

void provider::remove_waiting(std::deque<waiting_test>::iterator it, effects& out) {
    const auto from = static_cast<std::size_t>(it - m_queue.begin());
    m_queue.erase(it);
    report_positions(from, out);
}

void provider::withdraw(time_point now, session_id session, finish_reason reason, effects& out) {
    if (auto it = find_waiting(session); it != m_queue.end()) {
        remove_waiting(it, out);
        return;
    }
    if (running_test* test = find_running(session); test != nullptr) {
        finish(static_cast<std::size_t>(test - m_active.data()), reason, {}, out);
        fill_slots(now, out);
    }
}

} // namespace glasnode::proto::negotiation
