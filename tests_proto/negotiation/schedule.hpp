// The schedule of one differential test as the agent proposes it and the provider checks it:
// a list of flows, each with its direction, port, payload kind, concurrency group and length,
// plus the per-flow tokens that let the provider's test ports recognise a flow.
//
// Directions are the agent's: `upload` sends from the agent to the provider (the provider
// receives, as a BitTorrent leech), `download` sends from the provider to the agent (the
// provider seeds). Flows sharing a group id run at the same time; groups run one after another.
//
// Tokens. The provider grants a test one random 16-byte test token. Flow i's token is
// BLAKE2b-128 keyed by the test token over "glasnode/diff/flow" || u16 big-endian i; the flow's
// BitTorrent info-hash is info_hash_of_token(flow token) (SHA-1). A control flow sends the same
// info-hash with every byte inverted on the wire; the flow engine undoes that before asking.
// Both ends derive the same values, so the token itself never travels on a test flow.
//
// Errors: validate_schedule() returns errc::invalid_argument with a reason naming the first
// offending flow; it never throws.
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "storage/result.hpp"
#include "tests_proto/analysis/verdict.hpp"
#include "tests_proto/diff/bt_wire.hpp"

namespace glasnode::proto::negotiation {

// The vocabulary of the differential test, shared with the flow engine and the analysis.
using flow_kind = diff::flow_kind;
using direction = proto::direction;
using test_port = proto::test_port;
using info_hash_t = diff::info_hash_t;

inline constexpr std::size_t token_size = 16;
using token_t = std::array<std::uint8_t, token_size>;

// The name and version a provider of the differential test answers to.
inline constexpr std::string_view diff_test_name = "diff";
inline constexpr std::uint32_t diff_test_version = 1;

// Hard bound on the flows of one schedule, applied when decoding (provider_options::max_flows
// is the policy bound and cannot exceed it).
inline constexpr std::size_t max_schedule_flows = 256;

using proto::agent_role;
using proto::flow_role;
using proto::flow_spec;
using proto::provider_role;

// Bounds a provider applies to a proposed schedule (see provider_options for the defaults'
// reasons).
struct schedule_bounds {
    std::size_t max_flows = 64;
    std::chrono::milliseconds min_flow_duration{500};
    std::chrono::milliseconds max_flow_duration{30'000};
    std::size_t max_flows_per_group = 4;
    // Added to every group's longest flow: connection setup and teardown between groups.
    std::chrono::milliseconds group_margin{2'000};
    std::chrono::milliseconds max_test_wall{180'000};
};

// Sum over groups of (longest flow of the group + group_margin). Empty schedule: 0.
std::chrono::milliseconds schedule_wall_time(std::span<const flow_spec> schedule,
                                             std::chrono::milliseconds group_margin);

// errc::invalid_argument when the schedule is empty, holds more than max_flows flows, repeats
// an index, has a flow shorter or longer than allowed, puts more than max_flows_per_group flows
// in one group, or its wall time exceeds max_test_wall. On success, the wall time.
result<std::chrono::milliseconds> validate_schedule(std::span<const flow_spec> schedule,
                                                    const schedule_bounds& bounds);

// Flow `index`'s token, derived from the test token (see the header comment).
token_t flow_token(const token_t& test_token, std::uint16_t index) noexcept;
// The info-hash flow `index` announces in its handshake (before any inversion on the wire).
info_hash_t flow_info_hash(const token_t& test_token, std::uint16_t index);

} // namespace glasnode::proto::negotiation
