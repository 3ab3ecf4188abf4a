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
#include <vector>

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

// A flow's series recorded at a finer interval than `min_rtt` allows (plan_samples with the RTT
// unknown), brought to the plan's rule once the flow's minimum RTT is known: adjacent samples
// summed in groups of ceil(10 min_rtt / interval), the interval multiplied by it (the last group
// may hold fewer). Nothing changes when min_rtt is 0 or already at most a tenth of the
// interval. The flow engine records every flow this way and coarsens at its end: a plan made at
// the window's start knows only the handshake's RTT, which includes whatever queue the path
// had then; under on/off cross traffic (tests/emu cross, 240 ms FIFO) 14 of 20 reference flows
// were planned at 380-870 ms intervals (4-7 samples for 2.5 s) while their minimum RTT over
// the flow was 0.01-0.2 ms, and the peak rule's 0.9 quantile of 4 samples is one interval.
void coarsen_samples(std::vector<std::uint64_t>& samples, std::chrono::microseconds& interval,
                     std::chrono::microseconds min_rtt);

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
