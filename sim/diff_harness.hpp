// One whole differential test in the simulator: the real agent core against the real provider
// core (tests_proto/negotiation), through their real messages (encoded bytes) on a modelled
// control channel, with modelled flows (sim/flow_model.hpp) on a modelled path, judged by the
// real analysis (tests_proto/diff/test_data.hpp). Nothing here opens a socket or reads a clock.
//
// The run, on one event loop (sim/event_loop.hpp), from virtual time 0:
//   - the agent core starts; every agent_send reaches the provider's node one control latency
//     later, in order. There a ping is answered with a pong as the node's control server does,
//     and everything else goes to provider::receive() on session 1;
//   - every provider send_message reaches the agent core one control latency later; a message
//     with close_after is followed by the connection's close (agent::on_closed);
//   - each start_flows slot is modelled at once; its events follow on the loop: the provider
//     authorises each flow when it reads the handshake (a refusal ends the agent's end of the
//     flow as `refused`), and each end reports its measurement when the model says it ends;
//   - both cores' timers are re-armed at their next_expiry() after every input;
//   - once the agent reports test_done or test_failed, its flows are stopped and the control
//     connection closes (the provider sees it one latency later); the run ends when no event is
//     left.
// Randomness: one master seed; splitmix streams per node: 0 the agent core, 1 the provider core,
// 2 the network (the flows' noise).
//
// Event kinds in the trace (event_kind) are part of the trace hash's meaning: renumbering them
// changes every hash.
//
// Errors: run_diff_test returns errc::timeout if the agent has not finished within time_limit of
// virtual time (a core that never gives up would be a bug the limit turns into an error). A test
// that fails is not an error: it is harness_result::failure.
// Thread-safety: none shared; run_diff_test is a pure function of its options.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "sim/flow_model.hpp"
#include "storage/result.hpp"
#include "tests_proto/diff/test_data.hpp"
#include "tests_proto/negotiation/agent.hpp"
#include "tests_proto/negotiation/provider.hpp"

namespace glasnode::sim {

enum class event_kind : std::uint16_t {
    agent_start = 1,
    to_provider = 2,    // a control message reaches the provider's node (payload: the message)
    to_agent = 3,       // a control message reaches the agent (payload: the message)
    agent_timer = 4,    // the agent core's next_expiry
    provider_timer = 5, // the provider core's next_expiry
    handshake = 6,      // the provider reads a flow's handshake (payload: info-hash, kind, port)
    agent_flow_end = 7, // the agent's end of a flow reports (payload: encoded measurement)
    provider_flow_end = 8,
    agent_closed = 9,     // the agent sees the control connection close
    provider_closed = 10, // the provider sees the control connection close
    unidentified = 11     // a test port loses a connection it never identified
};

struct harness_options {
    std::uint64_t seed = 1;
    path_model path;
    path_policy policy;
    flow_timeouts timeouts;
    proto::negotiation::agent_options agent;
    proto::negotiation::provider_options provider;
    // One way, each direction, for every control message.
    std::chrono::microseconds control_latency{10'000};
    // Fault injection: the provider's node sends nothing (messages and pongs are lost) from this
    // virtual time on.
    std::optional<std::chrono::milliseconds> provider_silent_after;
    std::chrono::seconds time_limit{3600};
};

struct harness_result {
    std::optional<proto::diff::test_data> data; // the agent's test_done
    std::optional<error> failure;               // the agent's test_failed
    // Every test_finished the provider reported (one per run that reached it).
    std::vector<proto::negotiation::test_finished> provider_tests;
    std::size_t runs_granted = 0;
    std::chrono::nanoseconds agent_finished_at{0}; // virtual time of test_done / test_failed
    std::chrono::nanoseconds ended_at{0};          // virtual time of the last event
    std::size_t events = 0;
    std::uint64_t trace_hash = 0;
};

result<harness_result> run_diff_test(const harness_options& options);

} // namespace glasnode::sim
