// The rules every flow of the differential test follows to turn bytes over time into a
// measurement: how long one interval sample is, which sample a received byte counts in, and
// how a flow's end is named. The flow engine (node/flow) applies them to real sockets and the
// simulator (sim/) to modelled flows, so both produce flow_measurements by the same rules.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

#include "tests_proto/flow_types.hpp"

namespace glasnode::proto::diff {

struct sample_plan {
    std::chrono::microseconds interval{0};
    std::size_t count = 0;
};

// The receiver's sample intervals for a measurement window of `duration`. `requested` 0 asks
// for duration/100 (Wehe's 100 samples a flow). An interval is never shorter than 10 min RTTs
// (Wehe: shorter intervals measure TCP's own burstiness, not the path) nor than 1 ms, and never
// so short that more than max_samples_per_flow samples would be needed. `min_rtt` 0: unknown.
// count = ceil(duration / interval), at least 1.
sample_plan plan_samples(std::chrono::microseconds duration, std::chrono::microseconds requested,
                         std::chrono::microseconds min_rtt) noexcept;

// The sample a byte received `since` the window start counts in (the last one from the window's
// end on). plan.count must be >= 1.
std::size_t sample_index(const sample_plan& plan, std::chrono::microseconds since) noexcept;

// How a flow ends when its peer closes (EOF):
//   leech: completed if its own window was already over, else eof_early;
//   seed:  completed once the peer had asked for pieces and at least 90% of the duration was
//          served (the leech's close is how a seed learns the window is over), else eof_early.
flow_end leech_eof_end(bool window_over) noexcept;
flow_end seed_eof_end(bool peer_interested, std::chrono::microseconds served,
                      std::chrono::microseconds duration) noexcept;

// Whether a later account of a flow's end replaces the one already recorded: the first account
// stands, except that a reset replaces eof_early or completed (a RST can surface as EOF first,
// when a pending write consumed the socket error).
bool replaces_end(std::optional<flow_end> recorded, flow_end next) noexcept;

} // namespace glasnode::proto::diff
