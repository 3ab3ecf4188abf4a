// The provider side of test negotiation (Neubot's negotiate / test / collect), sans-IO.
//
// One session is one authenticated control connection, named by an opaque id the driver
// chooses. A session holds at most one test at a time, queued or running. The provider:
//   - checks a `negotiate` against its schedule bounds (refused otherwise) and its test name
//     and version (refused / unsupported_version otherwise);
//   - runs at most max_active tests at once and keeps at most max_queue more waiting in FIFO
//     order (busy when full); a waiting agent gets `queue_status` whenever its position
//     changes (and once when it joins the queue);
//   - grants the slot with a fresh random token; the test's deadline is the grant time plus
//     its schedule's wall time plus deadline_margin;
//   - authorises each scheduled flow once, by the info-hash its handshake carries, while the
//     test is live (granted, before its deadline, not finished);
//   - finishes a test on `collect` (answering with its own measurements), on `cancel`, when
//     the session closes, or at its deadline; the slot then goes to the next in the queue. The
//     agent's flows end a moment before the provider's side of them has drained, so a collect
//     that arrives while authorised flows are still unreported is held until the last of them
//     is reported or collect_wait has passed, whichever comes first (the reply then carries
//     not_run for the flows still missing). The reply also counts the test port connections
//     from the agent that never became a flow (diff::unidentified_connections), an authorised
//     flow still unreported among those that could have reset the agent;
//
// Driving it. Every input takes `now` from the driver's steady clock; the provider never reads
// a clock, a socket or OS randomness (the random_source is used for test tokens only). Inputs
// return the effects to carry out, in order: messages to send on a session (close the session
// after sending when close_after is set: the peer broke the protocol), and events for the
// driver (a test was granted: its flows may now connect; a test finished: stop its flows,
// store the measurements). After every call the driver re-arms one timer at next_expiry() and
// calls handle_expiry() when it fires. An input that arrives after a test's deadline first
// expires that test, so a late timer changes nothing observable. The flow engine reports each
// provider-side flow with on_flow_finished(), by the info-hash it was authorised with: the
// provider keeps the only ledger of which flow belongs to which test.
//
// Errors: malformed agent messages are answered with wire::error_message (protocol,
// limit_exceeded or unsupported_version, close_after set); refusals are error_message refused
// or busy; an agent whose test passes its deadline is told so with error_message refused.
// on_flow_finished returns errc::not_found for no live test on the session or an unknown flow,
// errc::timeout after the test's deadline, errc::invalid_argument for a flow never authorised,
// reported twice, or a measurement outside the wire bounds; nothing changes then. Nothing throws
// except std::bad_alloc.
// Thread-safety: none; one thread drives a provider. It holds a reference to the random_source,
// which must outlive it. Neither copyable nor movable (drivers keep pointers to it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "overlay/identity/random.hpp"
#include "overlay/wire/bytes.hpp"
#include "overlay/wire/message.hpp"
#include "storage/result.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/negotiation/messages.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::proto::negotiation {

using session_id = std::uint64_t;
using time_point = std::chrono::steady_clock::time_point;

// The provider's settings; out-of-range values are clamped by the constructor as noted.
struct provider_options {
    // Schedule policy. Defaults: at most 64 flows of 500 ms .. 30 s, at most 4 flows per
    // concurrent group, 2 s between groups, 180 s of wall time per test (a full test of 16
    // flows at 5 s x 3 repetitions takes about 127 s). max_flows is clamped to
    // max_schedule_flows.
    schedule_bounds bounds;
    // Tests waiting for a slot; more are answered busy. Clamped to max_queue_report.
    std::size_t max_queue = 8;
    // Tests running at once. One keeps tests from disturbing each other's measurements; at
    // least 1.
    std::size_t max_active = 1;
    // Added to a test's wall time to form its deadline: room for connection set-up, a late
    // start and the collect exchange.
    std::chrono::milliseconds deadline_margin{30'000};
    // Finished tests remembered so that a late flow is refused as expired or finished rather
    // than as unknown (a diagnostic for the agent, nothing more).
    std::size_t remembered_tests = 32;
    // How long a collect is held for the provider's own side of flows still draining (their
    // seeds finish a drain timeout after the agent's leeches at most).
    std::chrono::milliseconds collect_wait{5'000};
    // The test ports announced in every grant.
    std::uint16_t bt_port = 6881;
    std::uint16_t neutral_port = 9775;
    // The version of the "diff" test this provider runs.
    std::uint32_t test_version = diff_test_version;
    // This provider's own cap on the rate its seeds send at, bit/s (0: none). A test's flows
    // are paced at the lower of it and the agent's max_rate_bps.
    std::uint64_t max_rate_bps = 0;
};

// Send `message` (an encoded envelope) on `session`.
struct send_message {
    session_id session = 0;
    bytes message;
    // The agent broke the protocol: close the session once the message is sent.
    bool close_after = false;
};

// The session's test holds a slot from now on; its flows may connect until `deadline`.
struct test_granted {
    session_id session = 0;
    token_t token{};
    time_point deadline{};
    std::vector<flow_spec> schedule;
};

enum class finish_reason : std::uint8_t { completed, expired, session_closed, cancelled };
std::string_view to_string(finish_reason r) noexcept;

// The test is over and its slot is free: stop its flows, keep its measurements.
struct test_finished {
    session_id session = 0;
    token_t token{};
    finish_reason reason = finish_reason::completed;
    std::vector<flow_spec> schedule;
    // One per scheduled flow, in schedule order; flows never reported are not_run.
    std::vector<flow_measurement> provider_measurements;
    // The test ports' connections from the agent the driver could not tie to a flow (as in the
    // collect reply).
    diff::unidentified_connections unidentified;
    // As the agent sent them in `collect` (empty unless completed).
    std::vector<flow_measurement> agent_measurements;
};

using effect = std::variant<send_message, test_granted, test_finished>;
using effects = std::vector<effect>;

// A test port may run this flow: for which test, as which role, until when.
struct flow_assignment {
    session_id session = 0;
    std::uint16_t index = 0;
    flow_spec spec;
    flow_role role = flow_role::seed; // the provider's role
    time_point deadline{};            // the test's deadline: stop the flow by then
    // Seeds pace at no more than this, bit/s (0: no cap): the lower of the agent's and ours.
    std::uint64_t max_rate_bps = 0;
};

enum class flow_refusal : std::uint8_t {
    unknown_token, // no live or recently finished test has a flow with this info-hash
    expired,       // the test's deadline has passed
    finished,      // the test was collected, cancelled or its session closed
    already_used,  // this flow has connected once already
    wrong_kind,    // the flow is scheduled with the other payload kind
    wrong_port,    // the flow is scheduled on the other test port
};
std::string_view to_string(flow_refusal r) noexcept;

using flow_authorization = std::variant<flow_assignment, flow_refusal>;

class provider {
public:
    // `random` must outlive the provider.
    provider(provider_options options, random_source& random);
    provider(const provider&) = delete;
    provider& operator=(const provider&) = delete;
    provider(provider&&) = delete;
    provider& operator=(provider&&) = delete;
    ~provider();

    // One frame payload received from the agent on `session`: negotiate, collect or cancel.
    effects receive(time_point now, session_id session, byte_view payload);
    // The same messages already decoded (a dispatcher that decodes typed bodies calls these).
    effects on_negotiate(time_point now, session_id session, const negotiate& message);
    effects on_collect(time_point now, session_id session, const collect& message);
    effects on_cancel(time_point now, session_id session);
    // The control connection is gone: its queued test leaves the queue, its running test ends.
    effects on_session_closed(time_point now, session_id session);

    // Asked by a test port once it has read a handshake: `kind` from the first byte,
    // `info_hash` as recovered (un-inverted for control flows), `port` the port it arrived on
    // (nullopt: not checked). An accepted flow cannot be accepted again.
    flow_authorization authorize_flow(time_point now, flow_kind kind, const info_hash_t& info_hash,
                                      std::optional<test_port> port = std::nullopt);

    // The provider's record of an authorised flow. Its index and role are set from the
    // schedule; its samples are merged down to sample_budget(flows of the test) if needed. The
    // effects answer a held collect once its last flow is in.
    result<effects> on_flow_finished(time_point now, session_id session, std::uint16_t index,
                                     flow_measurement measurement);
    // The same, the flow named by the info-hash authorize_flow accepted it with.
    result<effects> on_flow_finished(time_point now, const info_hash_t& info_hash,
                                     flow_measurement measurement);
    // Authorised flows of the session's running test not reported yet.
    std::size_t flows_unreported(session_id session) const noexcept;
    // A test port connection from the address of `session`'s agent that ended without becoming
    // one of its flows (before a valid handshake, or refused), while its test runs: counted
    // for the collect reply (diff::unidentified_connections). Ignored without a running test.
    void on_unidentified_connection(time_point now, session_id session,
                                    std::uint32_t resets_received, bool could_reset_peer);

    // The earliest deadline of a running test or of a held collect; nullopt when none runs.
    std::optional<time_point> next_expiry() const noexcept;
    // Finishes every running test whose deadline is <= now (reason expired), answers every
    // held collect whose wait is over, and grants the freed slots.
    effects handle_expiry(time_point now);

    // Introspection for the driver's status page and for tests.
    std::size_t running() const noexcept { return m_active.size(); }
    std::size_t waiting() const noexcept { return m_queue.size(); }
    // 1-based position in the queue; nullopt if the session is not waiting.
    std::optional<std::uint32_t> queue_position(session_id session) const noexcept;
    bool is_running(session_id session) const noexcept;
    const provider_options& options() const noexcept { return m_options; }

private:
    struct waiting_test {
        session_id session = 0;
        std::vector<flow_spec> schedule;
        std::chrono::milliseconds wall{0};
        std::uint64_t max_rate_bps = 0; // as the agent asked
    };
    struct flow_state {
        flow_spec spec;
        info_hash_t info_hash{};
        bool authorized = false;
        std::optional<flow_measurement> measurement;
    };
    struct running_test {
        session_id session = 0;
        token_t token{};
        time_point deadline{};
        std::uint64_t max_rate_bps = 0; // the pacing cap of its seeds (0: none)
        std::vector<flow_state> flows;
        // The agent's collect, held while authorised flows are still unreported.
        std::optional<std::vector<flow_measurement>> held_collect;
        time_point collect_deadline{};
        diff::unidentified_connections unidentified;
    };
    struct remembered_test {
        std::vector<info_hash_t> info_hashes;
        finish_reason reason = finish_reason::completed;
    };

    running_test* find_running(session_id session) noexcept;
    std::deque<waiting_test>::iterator find_waiting(session_id session) noexcept;
    bool token_in_use(const token_t& token) const noexcept;
    void expire(time_point now, effects& out);
    // Sends collect_reply and finishes the test (completed); the caller fills the slot.
    void answer_collect(std::size_t active_index, std::vector<flow_measurement> agent_measurements,
                        effects& out);
    static bool has_unreported(const running_test& test) noexcept;
    // The measurement sent for a flow with no report (not_run).
    static flow_measurement unreported(const flow_state& f);
    // The test's unidentified connections, with its authorised flows not reported yet counted
    // as connections that could have reset the agent.
    static diff::unidentified_connections unidentified_of(const running_test& test);
    void start(time_point now, waiting_test test, effects& out);
    void finish(std::size_t active_index, finish_reason reason,
                std::vector<flow_measurement> agent_measurements, effects& out);
    void fill_slots(time_point now, effects& out);
    void report_positions(std::size_t from, effects& out);
    void remove_waiting(std::deque<waiting_test>::iterator it, effects& out);
    void withdraw(time_point now, session_id session, finish_reason reason, effects& out);

    provider_options m_options;
    random_source& m_random;
    wire::message_registry m_accepted;
    std::vector<running_test> m_active;
    std::deque<waiting_test> m_queue;
    std::deque<remembered_test> m_remembered;
};

} // namespace glasnode::proto::negotiation
