// The agent side of the differential test, sans-IO: the pure pieces (building requests, reading
// replies) and `agent`, the core that runs one whole test against one provider.
//
// The agent core (the provider core's shape, provider.hpp). start() proposes the schedule
// (negotiate). The provider's replies come in through receive(): queue_status while waiting,
// grant when the slot is the agent's. The test then runs slot by slot: the core asks the driver
// to start the flows of one slot (start_flows) and waits until the driver reports each of them
// with flow_done(); then the next slot. After the last slot it sends collect, and the
// provider's collect_reply completes the run. The core analyses it (tests_proto/diff/
// test_data.hpp); a positive or inconclusive comparison asks for one confirmation rerun, which
// is negotiated and run the same way (one port's rerun where both ports of a direction accuse
// on one basis: pool_confirmations). The finished test is test_done (its data and verdicts) or
// test_failed (the error that stopped it).
//
// Liveness. The core pings the provider every `keepalive` on the control connection while the
// test is live; anything the provider sends (a pong included) shows it is alive. Nothing heard
// for `silence_timeout` ends the test with errc::timeout: a provider that stops answering
// mid-test ends it within that time, instead of every remaining flow failing one by one.
//
// Driving it. Every input takes `now` from the driver's steady clock and first expires what is
// due, so a late timer changes nothing observable. The effects of one call are carried out in
// order; after every call the driver re-arms one timer at next_expiry() and calls
// handle_expiry() when it fires. After test_done or test_failed the driver closes the control
// connection and stops any flows still running; the core ignores every later input.
//

// Errors (of the pure pieces): make_negotiate returns errc::invalid_argument for a schedule outside
// `bounds` (checked before anything is sent, so a refusal by a provider with the same bounds cannot
// happen); make_collect returns errc::limit_exceeded above max_schedule_flows measurements and
// errc::invalid_argument for a measurement outside the wire bounds; decode_provider_reply
// returns the decoding errors of overlay/wire/message.hpp (a type the provider does not send is
// errc::protocol_error). The core reports every failure as test_failed: the provider's refusal
// as to_errc of its wire code (busy, unsupported_version, invalid_argument for refused), an
// out-of-order or malformed reply as errc::protocol_error, a wait past its bound as
// errc::timeout, a lost connection as the error the driver passes to on_closed(). Nothing
// throws except std::bad_alloc.
// Thread-safety: the pure functions have none to worry about; one thread drives an agent, which
// holds a reference to its random_source (schedule order and flow seeds), which must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "overlay/identity/random.hpp"
#include "overlay/wire/bytes.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/message.hpp"
#include "storage/result.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/diff/schedule.hpp"
#include "tests_proto/diff/test_data.hpp"
#include "tests_proto/negotiation/messages.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::proto::negotiation {

// An encoded negotiate for the "diff" test at `test_version`, asking for seeds paced at no more
// than max_rate_bps (0: no cap).
result<bytes> make_negotiate(std::span<const flow_spec> schedule,
                             const schedule_bounds& bounds = {},
                             std::uint32_t test_version = diff_test_version,
                             std::uint64_t max_rate_bps = 0);

// An encoded collect. Sample series are merged down to sample_budget(measurements.size()) so
// that the message stays within max_samples_per_message.
result<bytes> make_collect(std::vector<flow_measurement> measurements);

bytes make_cancel();

using provider_reply = std::variant<queue_status, grant, wire::error_message, collect_reply>;

// One frame payload from the provider.
result<provider_reply> decode_provider_reply(byte_view payload,
                                             const wire::decode_limits& limits = {});

// What the agent needs to run one scheduled flow once granted.
struct agent_flow {
    flow_spec spec;
    flow_role role = flow_role::seed; // the agent's role
    info_hash_t info_hash{};          // what its handshake carries (before any inversion)
};

// The granted test's flows, in schedule order.
std::vector<agent_flow> plan_flows(const token_t& token, std::span<const flow_spec> schedule);

using time_point = std::chrono::steady_clock::time_point;

struct agent_options {
    diff::schedule_params schedule;
    // Rerun positive or inconclusive comparisons once (Wehe's practice).
    bool confirm = true;
    // Checked before anything is sent (a provider with the same bounds cannot refuse).
    schedule_bounds bounds;
    std::uint32_t test_version = diff_test_version;
    // Longest wait for the provider's slot (its queue may hold several tests).
    std::chrono::milliseconds queue_timeout{300'000};
    // Longest wait for collect_reply after collect (the provider waits up to its collect_wait
    // for its own side of the last flows).
    std::chrono::milliseconds reply_timeout{30'000};
    // A ping this often while the test is live. Providers drop silent control connections (2 min
    // by default); the pongs are also how the agent knows the provider is still there.
    std::chrono::milliseconds keepalive{5'000};
    // Nothing from the provider for this long ends the test (errc::timeout). Three keepalives:
    // one lost pong on a lossy path is no reason to give up.
    std::chrono::milliseconds silence_timeout{15'000};
    // A slot's flows must all be reported by its longest flow + this: the flow engine bounds
    // each flow by its connect, handshake, stall and drain timeouts, well within it.
    std::chrono::milliseconds flow_grace{30'000};
};

// Send this encoded envelope to the provider.
struct agent_send {
    bytes message;
};

// One flow for the driver to run now, to the provider's `port`, as `role`.
struct flow_to_run {
    flow_spec spec;
    flow_role role = flow_role::seed; // the agent's role
    info_hash_t info_hash{};          // what its handshake carries (before any inversion)
    std::uint16_t port = 0;           // the provider's test port, from the grant
    std::uint64_t seed = 0;           // the flow's payload seed
    // The most the agent's seed may send, bit/s: the test's cap (schedule_params max_rate_bps,
    // 0: none), or lower for an upload paired on an asymmetric path (paired_upload_pace_bps).
    std::uint64_t max_rate_bps = 0;
};

// Run these flows together; report each with flow_done(spec.index, ...).
struct start_flows {
    std::uint32_t run = 0; // 0: the test, 1: its confirmation rerun, 2: a second rerun
    std::size_t slot = 0;  // 0-based within the run
    std::vector<flow_to_run> flows;
};

// The provider queued the test: position 1 is next.
struct queued {
    std::uint32_t position = 0;
    std::uint32_t length = 0;
};

// A run was granted and its flows begin.
struct run_started {
    std::uint32_t run = 0;
    std::size_t flows = 0;
    std::size_t slots = 0;
    std::chrono::milliseconds transfer_time{0};
};

struct test_done {
    diff::test_data data;
};

struct test_failed {
    error why;
};

using agent_effect =
    std::variant<agent_send, start_flows, queued, run_started, test_done, test_failed>;
using agent_effects = std::vector<agent_effect>;

class agent {
public:
    enum class phase : std::uint8_t { idle, negotiating, running, collecting, done, failed };

    // `random` must outlive the agent.
    agent(agent_options options, random_source& random);
    agent(const agent&) = delete;
    agent& operator=(const agent&) = delete;
    agent(agent&&) = delete;
    agent& operator=(agent&&) = delete;
    ~agent();

    // Proposes the test (once; later calls do nothing).
    agent_effects start(time_point now);
    // One frame payload from the provider.
    agent_effects receive(time_point now, byte_view payload);
    // What the agent's end measured of flow `index` of the current slot. A report for a flow
    // not running is ignored (the driver may report flows of a test that already failed).
    agent_effects flow_done(time_point now, std::uint16_t index, flow_measurement measurement);
    // The control connection is gone.
    agent_effects on_closed(time_point now, error why);
    // Withdraws the test (a person stopped it): sends cancel, fails with errc::closed.
    agent_effects cancel(time_point now);

    std::optional<time_point> next_expiry() const noexcept;
    agent_effects handle_expiry(time_point now);

    phase state() const noexcept { return m_phase; }
    bool finished() const noexcept { return m_phase == phase::done || m_phase == phase::failed; }
    const agent_options& options() const noexcept { return m_options; }

private:
    bool live() const noexcept;
    void expire(time_point now, agent_effects& out);
    void fail(error why, agent_effects& out);
    // Whether the current run's directions are paired from its first slot: when asked to, and a
    // rerun like the first run once that paired.
    bool paired_from_the_start() const noexcept;
    void negotiate_run(time_point now, std::vector<flow_spec> schedule, agent_effects& out);
    void on_grant(time_point now, const grant& g, agent_effects& out);
    void start_slot(time_point now, agent_effects& out);
    // Whether the next slot of a rerun may run: it serves a comparison still being confirmed,
    // and its flows at the pacing cap fit in the byte budget. If not, the comparisons it serves
    // move from m_confirming to the test's unconfirmed_keys (give_up_confirmation).
    bool rerun_slot_fits(const std::vector<flow_spec>& slot);
    // Bytes per flow shape of the first run (fit_confirmation's estimate).
    std::vector<diff::shape_bytes> first_run_shapes() const;
    // After the first rerun, one more (run 2) for: a pooled comparison its neutral port's rerun
    // did not confirm (a rerun of its own, what an unpooled confirmation would have run), and a
    // comparison whose first two runs split between positive and inconclusive
    // (diff::tie_breaks_wanted), so that one cross traffic burst does not leave a comparison
    // unjudged (seen in tests/emu cross_throttle: a rerun control flow at 14.8 of 50 Mbit/s, and
    // first-run references at 16.7-17.1 whose peaks made the rule inconclusive). True when the
    // test goes on (or failed).
    bool run_a_second_rerun(time_point now, agent_effects& out);
    // direction_pairing::automatic: once the first run has a completed control flow of each
    // direction, whether the path allows pairing them; if so, the rest of the run is paired.
    void decide_pairing();
    // make_confirmation's rerun of `which`, its flows shortened where the test's time budget
    // needs it (diff::rerun_flow_duration, with the first run's overhead per slot).
    std::vector<flow_spec> rerun_schedule(time_point now,
                                          std::span<const diff::comparison_key> which,
                                          std::span<const diff::comparison_key> controls_only);
    void send_collect(time_point now, agent_effects& out);
    void on_collect_reply(time_point now, const collect_reply& r, agent_effects& out);
    void send(bytes message, time_point now, agent_effects& out);

    agent_options m_options;
    random_source& m_random;
    phase m_phase = phase::idle;
    diff::test_data m_data;
    std::uint32_t m_run = 0;
    std::vector<diff::comparison_key> m_confirming; // what the current rerun confirms
    std::vector<flow_spec> m_schedule;              // the current run's
    std::vector<std::vector<flow_spec>> m_slots;
    std::size_t m_slot = 0;
    bool m_pairing_decided = false;
    std::vector<std::uint16_t> m_pending; // flows of the current slot not yet reported
    std::vector<flow_measurement> m_mine; // the current run's, as reported
    grant m_grant;
    time_point m_started{}; // the first run's grant: the test's own time begins
    std::chrono::milliseconds m_slot_overhead{0}; // of the first run (rerun_schedule)
    time_point m_queue_deadline{};
    time_point m_slot_deadline{};
    time_point m_reply_deadline{};
    time_point m_last_heard{};
    time_point m_next_ping{};
    std::uint64_t m_ping_nonce = 0;
};

} // namespace glasnode::proto::negotiation
