// The agent side of test negotiation: building its requests and reading the provider's
// replies. The agent's own sequencing (wait for grant, run flows, collect) lives in its driver;
// these are the pure pieces it needs.
//
// Errors: make_negotiate returns errc::invalid_argument for a schedule outside `bounds` (checked
// before anything is sent, so a refusal by a provider with the same bounds cannot happen);
// make_collect returns errc::limit_exceeded above max_schedule_flows measurements and
// errc::invalid_argument for a measurement outside the wire bounds; decode_provider_reply
// returns the decoding errors of overlay/wire/message.hpp (a type the provider does not send is
// errc::protocol_error). Nothing throws except std::bad_alloc.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "overlay/wire/bytes.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/message.hpp"
#include "storage/result.hpp"
#include "tests_proto/negotiation/measurement.hpp"
#include "tests_proto/negotiation/messages.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::proto::negotiation {

// An encoded negotiate for the "diff" test at `test_version`.
result<bytes> make_negotiate(std::span<const flow_spec> schedule,
                             const schedule_bounds& bounds = {},
                             std::uint32_t test_version = diff_test_version);

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

} // namespace glasnode::proto::negotiation
