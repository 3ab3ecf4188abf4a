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
// Clean references first: the first repetition opens with one control flow on every (direction,
// port), the directions alternating and the neutral port's first, before any BitTorrent flow;
// its BT flows follow, and later repetitions alternate BT and control as above. A classifier
// that remembers endpoints (nDPI caches ip:port verdicts: once it saw BitTorrent to B:6881,
// later flows to B:6881 are BitTorrent to it whatever they carry) penalises every later flow to
// that port, control flows too; these references are the only flows it had not seen BitTorrent
// before. They also measure the path each way before anything is paired.
//
// Pairing directions (direction_pairing): a sequential upload flow may run at the same time as
// the download flow of the same port and kind (join_directions). An access link is full
// duplex, so the two share no bottleneck, only the reverse path of each other's ACKs and
// requests, and the test takes half the time. The analysis still treats both as sequential
// flows (a flow is concurrent only beside another flow of its own direction, see
// test_data.hpp). On an asymmetric link it is wrong: the upload fills the narrow uplink's queue
// and the download's ACKs and requests wait behind it (measured on 50/5 Mbit/s: download flows
// at 4.7 instead of 47 Mbit/s, and an inconclusive); on a symmetric 50 Mbit/s link it halved
// the test (20 s instead of 40 s) with flows at 0.87 instead of 0.95 of the link. The automatic
// mode (the default) pairs only once the first control flow of each direction showed a path
// whose narrower direction carries at least together_min_rate_ratio of the wider one
// (paths_allow_pairing), or an uplink narrow enough that its paired uploads are paced below it
// (paired_upload_pace_bps: on 50/5 Mbit/s the downloads then ran at 42-46 Mbit/s), and only when
// the download's first control flow was steady (steady_fraction: under on/off cross traffic
// paired tests were often wrong, apart they were right); the schedule itself is built apart. A
// symmetric path's test takes about half the time (tests/emu: 23 s instead of 40 s, 35 s instead
// of 64 s with a confirmation rerun; 33 s instead of 52 s at 120 ms RTT). It needs each slot to
// start on an empty path: a flow's tail still in flight (once the seeder stopped at the
// leecher's first word with a pipeline's worth in its socket) delayed the next slot's
// handshakes, and the first paired slot's download then ran at 0.4-0.55 of the link
// (node/flow/flow.hpp, graceful end).
//
// Sans-IO and pure: randomness comes from the random_source; no clock.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "overlay/identity/random.hpp"
#include "tests_proto/flow_types.hpp"

namespace glasnode::proto::diff {

enum class direction_pairing : std::uint8_t {
    apart,     // one direction at a time
    together,  // every upload flow beside its download twin, from the start
    automatic, // together once the first control flows showed a symmetric enough path
};
std::string_view to_string(direction_pairing p) noexcept;
std::optional<direction_pairing> parse_direction_pairing(std::string_view s) noexcept;

// The narrower direction's rate over the wider one's from which the directions run together:
// on 50/5 Mbit/s (0.1) pairing starved the downloads; a symmetric link measures ~1. 0.5 keeps a
// 2:1 link apart too (not measured together).
inline constexpr double together_min_rate_ratio = 0.5;
// Whether a path whose first control flows ran at these rates (bit/s, the agent's own account:
// a seed's payload sent, a leech's received) allows pairing directions. False when either is 0.
bool paths_allow_pairing(double upload_bps, double download_bps) noexcept;

// A path whose uplink is too narrow to pair unpaced (paths_allow_pairing false, upload the
// narrow direction) can still be paired with the upload flows paced below the uplink: then no
// queue forms there and the download's ACKs and requests pass. Measured on 50/5 Mbit/s, upload
// and download paired (tests/emu asym, bench/RESULTS.md): unpaced, downloads at 7.2-8.6 Mbit/s;
// uploads paced at 3.0 or 3.5 Mbit/s, downloads at 42-46; at 4.0, 31-32. The pace leaves the
// uplink paired_uplink_use of its rate for the upload's wire bytes (payload x
// paired_header_overhead) plus the download's ACKs (paired_ack_share of the download's rate):
// on 4.6/47 Mbit/s, 2.8 Mbit/s. A throttle that leaves BitTorrent more than the pace is not seen
// on the upload of such a test, so a pace below paired_min_pace_share of the uplink keeps the
// directions apart, as does a narrow download (the provider paces the download's seeds, at the
// test's cap only). 0: stay apart (or, when paths_allow_pairing, pair unpaced).
inline constexpr double paired_uplink_use = 0.9;
inline constexpr double paired_ack_share = 0.025;      // a 66-byte ACK per two 1448-byte segments
inline constexpr double paired_header_overhead = 1.04; // 52 header bytes per 1448 of payload
inline constexpr double paired_min_pace_share = 0.5;
std::uint64_t paired_upload_pace_bps(double upload_bps, double download_bps) noexcept;

// Pairing needs a quiet path. Under on/off cross traffic in both directions (tests/emu
// cross_throttle) paired tests left control flows at 6-8 of 50 Mbit/s and were right in 3 of 7
// runs (9 of 11 before the samples were planned from the flow's own minimum RTT), against every
// run apart: a burst now meets both directions' flows at once, and the download's ACKs queue
// behind our own upload as well as the cross traffic's. So the automatic mode pairs only when
// the first download control flow was steady: of its intervals (the first tenth, start-up, and
// the last, partial one left out) at least steady_min_fraction at or above steady_peak_share of
// its peak (their 0.9 quantile, as the peak rule takes it). Measured on the emulated ISP's first
// download references (bench/RESULTS.md): 118 on quiet paths (clean, 1-5% random loss, every
// policy) at least 0.76; 56 under on/off cross traffic at most 0.685 (0.61 over the first 32, on
// which 0.7 was chosen: the margin below it is thin). With fewer than steady_min_samples intervals
// (long RTTs: an interval is 10 minimum RTTs) it cannot tell and counts as steady: apart, such a
// path's test cannot fit in a minute anyway. Only the download: the agent measures no upload
// interval until the provider's collect_reply, after the run.
inline constexpr double steady_peak_share = 0.8;
inline constexpr double steady_min_fraction = 0.7;
inline constexpr std::size_t steady_min_samples = 10;
// The steady fraction of a receiver's interval series; nullopt below steady_min_samples or when
// its peak is 0.
std::optional<double> steady_fraction(std::span<const std::uint64_t> samples);

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
    // Whether sequential upload flows run beside their download twins (see the top).
    direction_pairing pairing = direction_pairing::automatic;
    // Both ends' seeds pace their pieces at no more than this, bit/s (SO_MAX_PACING_RATE; 0: no
    // cap). 100 Mbit/s: on an unshaped gigabit path the default test moves about 0.5 GB
    // instead of 9 GB; a throttle the test can see must hold BitTorrent below this rate
    // (README). Below 60 Mbit/s it would pace the testbed's 50 Mbit/s paths.
    std::uint64_t max_rate_bps = 100'000'000;
    // The most bytes a whole test may move, both directions, confirmation included (0: no
    // budget). A confirmation rerun expected to exceed it reruns fewer comparisons
    // (fit_confirmation), and a rerun slot that could exceed it at max_rate_bps is not run; the
    // comparisons left unconfirmed are inconclusive. Off by default: 250 MB at a 40 Mbit/s cap
    // leaves no room to confirm a 40% throttle on all four comparisons of a 50 Mbit/s path
    // (the first run alone moves 160 MB), so the budget needs a cheaper confirmation first.
    std::uint64_t max_test_bytes = 0;
    // The wall time a whole test should take, confirmation included (0: no limit). A rerun that
    // would not fit at flow_duration runs shorter flows, never shorter than
    // min_rerun_flow_duration (rerun_flow_duration); a tie-break (run 2) likewise. It decides
    // how long reruns are, not whether they run: a comparison is never left unconfirmed for
    // time. 60 s: what a person waits for a result (the budget).
    std::chrono::milliseconds time_budget{60'000};
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
// `controls_only`: BT-port keys of `which` whose first-run verdict was a port one (any payload
// penalised on the BT port): their rerun holds no BitTorrent flow, only the control flows of the
// port comparison (control on the BT port, control on the neutral port), 4 flows instead of 6
// with the default two repetitions; the merge keeps the first run's content figures for them
// (analysis/verdict.hpp merge_rerun).
struct comparison_key {
    direction dir;
    test_port port;
    friend constexpr bool operator==(const comparison_key&, const comparison_key&) = default;
};
// Whether `keys` holds `k`.
bool holds(std::span<const comparison_key> keys, const comparison_key& k) noexcept;
std::vector<flow_spec> make_confirmation(std::span<const comparison_key> which,
                                         const schedule_params& params, random_source& rng,
                                         std::uint16_t first_index, std::uint16_t first_group,
                                         std::span<const comparison_key> controls_only = {});

// Whether flow `f` of a confirmation rerun serves comparison `k`: one of its own (direction,
// port), or, for control on the neutral port, the BT port's port comparison (the reference
// make_confirmation adds for it). Every flow make_confirmation(which) builds serves some key
// of `which`.
constexpr bool serves(const flow_spec& f, const comparison_key& k) noexcept {
    return k.dir == f.dir &&
           (k.port == f.port || (k.port == test_port::bt && f.port == test_port::neutral &&
                                 f.kind == flow_kind::control));
}

// The comparisons of `which` (in order of priority) whose rerun is expected to fit in the bytes
// the test has left (params.max_test_bytes - used_bytes). A rerun flow is expected to move 1.5 x
// the most a first-run flow of its direction, port and kind moved (`moved`: bytes per flow of
// that shape, both ways, on the wire), never more than flow_byte_bound at params.max_rate_bps;
// a shape the first run has no figure for counts at that bound. BitTorrent flows of a throttled
// comparison move little, so a throttled path can confirm all four comparisons within the
// budget a neutral path would spend on its first run. Taken greedily in order: a comparison
// that does not fit is skipped and later ones may still fit. No budget (max_test_bytes 0): all
// of `which`. The agent also checks each rerun slot against the bound before starting it
// (negotiation/agent.hpp), so the estimate decides what is tried, the bound what may be spent.
struct fitted_confirmation {
    std::vector<comparison_key> rerun;
    std::vector<comparison_key> skipped;
};
struct shape_bytes {
    direction dir;
    test_port port;
    flow_kind kind;
    std::uint64_t bytes;
};
fitted_confirmation fit_confirmation(std::span<const comparison_key> which,
                                     const schedule_params& params, std::uint64_t used_bytes,
                                     std::span<const shape_bytes> moved = {},
                                     std::span<const comparison_key> controls_only = {});

// The flow duration of a rerun of `slots` slots that keeps the test within params.time_budget:
// `elapsed` since the test began, `per_slot` the overhead of one slot beyond its flows (connect,
// handshake, drain; the first run's wall time less its transfer time, over its slots, so its
// negotiation and collect are counted too). params.flow_duration when it fits or there is no
// budget; otherwise what fits, but not below min_rerun_flow_duration (or flow_duration, if that
// is shorter). 2 s: on the emulated ISP flows cut to 2 s still separated a 40% cap from on/off
// cross traffic by their peaks, at 1.5 s they no longer did; and a rerun's flows confirm what the
// first run's full-length flows found. A delayed throttle whose onset a shorter flow no longer
// crosses is not confirmed (tests/emu delayed_10mb_pct with 2 s flows: none), which is why only
// a rerun that would pass the budget is shortened.
inline constexpr std::chrono::milliseconds min_rerun_flow_duration{2000};
// Kept free for the rerun's negotiation, collect and the report: without it, tests/emu
// cross_throttle reruns fitted to 60 s ended at 59.9-60.3 s.
inline constexpr std::chrono::milliseconds rerun_reserve{1000};
std::chrono::milliseconds rerun_flow_duration(const schedule_params& params,
                                              std::chrono::milliseconds elapsed,
                                              std::chrono::milliseconds per_slot,
                                              std::size_t slots) noexcept;

// The most bytes one flow of `duration_ms` can move at `max_rate_bps`, framing included.
std::uint64_t flow_byte_bound(std::uint32_t duration_ms, std::uint64_t max_rate_bps) noexcept;

// Pairs directions in `schedule` from group `from_group` on: each single-flow group joins the
// next single-flow group of the other direction with the same port and kind (that flow takes
// the earlier group's id, so slots_of runs them together). Groups before from_group, concurrent
// groups and flows without such a twin are left as they are. Returns how many flows moved.
std::size_t join_directions(std::vector<flow_spec>& schedule, std::uint16_t from_group);

// Flows grouped by slot, in execution order.
std::vector<std::vector<flow_spec>> slots_of(std::span<const flow_spec> schedule);

// Sum over slots of the longest flow: the test's transfer time without connection overheads.
std::chrono::milliseconds transfer_time(std::span<const flow_spec> schedule);

} // namespace glasnode::proto::diff
