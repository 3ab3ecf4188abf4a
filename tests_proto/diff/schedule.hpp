// The differential test's schedule: which flows run, in which order, and which run together.
//
// For each direction and repetition the schedule has
//   - sequential flows: BT and control on the BT port and on the neutral port, one at a time,
//     BT and control alternating within each (direction, port) pair in a random order, the
//     pairs themselves shuffled (Glasnost and Wehe compare flows that ran at different times);
//   - concurrent groups: BT + control on the same port, and control on the BT port + control on
//     the neutral port, started together so that they meet the same cross traffic (the paired
//     rule compares their aligned intervals: content and port differentiation).
// Sequential and concurrent slots are interleaved in a random order seeded by the caller.
//
// Sans-IO and pure: randomness comes from the random_source; no clock.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "overlay/identity/random.hpp"
#include "tests_proto/flow_types.hpp"

namespace glasnode::proto::diff {

struct schedule_params {
    // 2.5 s: on the emulated ISP, flows cut to 2 s still separated a 40% cap from on/off cross
    // traffic by their peaks, at 1.5 s they no longer did; 16 flows and a full confirmation
    // rerun stay within a 90 s test.
    std::chrono::milliseconds flow_duration{2500};
    // Sequential repetitions of each (direction, port, kind).
    std::uint32_t sequential_repetitions = 2;
    // Repetitions of each concurrent group. None by default: a single pair is one draw of two
    // TCP flows' unfairness (rules.hpp), and the paired rule needs paired_min_pairs of them.
    std::uint32_t concurrent_repetitions = 0;
    bool upload = true;
    bool download = true;
    // Only flows of this kind (a classifier check: what does a DPI box see of each kind?).
    // Such a schedule has no reference flows, so its comparisons are inconclusive.
    std::optional<flow_kind> only_kind;
};

// A full test. Indices and groups start at `first_index` / `first_group`.
std::vector<flow_spec> make_schedule(const schedule_params& params, random_source& rng,
                                     std::uint16_t first_index = 0, std::uint16_t first_group = 0);

// The confirmation rerun of some (direction, port) comparisons, as strong as the first run so
// that it can confirm or clear on its own: for each, the schedule's repetitions of BT and
// control on that port (and of control on the neutral port, the BT port's port reference,
// unless that port is rerun too), plus their concurrent groups when the schedule has any.
struct comparison_key {
    direction dir;
    test_port port;
};
std::vector<flow_spec> make_confirmation(std::span<const comparison_key> which,
                                         const schedule_params& params, random_source& rng,
                                         std::uint16_t first_index, std::uint16_t first_group);

// Flows grouped by slot, in execution order.
std::vector<std::vector<flow_spec>> slots_of(std::span<const flow_spec> schedule);

// Sum over slots of the longest flow: the test's transfer time without connection overheads.
std::chrono::milliseconds transfer_time(std::span<const flow_spec> schedule);

} // namespace glasnode::proto::diff
