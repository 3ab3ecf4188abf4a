// One differential test as data: every run's scheduled flows with what each end measured, the
// comparisons each confirmation rerun was meant to confirm, and the verdicts, per run and
// merged. The agent core builds it; node/ adds who, when and where, renders it (JSON, tables)
// and stores it; the simulator judges modelled flows through the very same functions.
//
// Errors: analyse_runs returns the analysis errors (tests_proto/analysis/verdict.hpp) and
// errc::invalid_argument when there is no run.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "storage/result.hpp"
#include "tests_proto/analysis/verdict.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/diff/schedule.hpp"
#include "tests_proto/flow_types.hpp"

namespace glasnode::proto::diff {

// One scheduled flow with what each end measured (not_run where an end has no report).
struct measured_flow {
    flow_spec spec;
    std::uint32_t repetition = 0; // n-th flow of its (direction, port, kind, concurrency)
    // Its group holds other flows of its direction: they shared its bottleneck. A flow of the
    // other direction beside it (directions_together) shares none, so it stays sequential.
    bool concurrent = false;
    flow_measurement agent;
    flow_measurement provider;

    // The end that received the payload (measures) and the end that sent it.
    const flow_measurement& receiver() const;
    const flow_measurement& sender() const;
    // Receiver-side mean over the measurement window, Mbit/s.
    double mbps() const;
};

// Matches measurements to the schedule by flow index; repetitions and concurrency are derived
// from the schedule's order and groups. Measurements of indices not in the schedule are
// ignored; each end's role is set from the flow's direction.
std::vector<measured_flow> match_measurements(std::span<const flow_spec> schedule,
                                              std::span<const flow_measurement> agent,
                                              std::span<const flow_measurement> provider);

// The analysis input: receiver samples in bit/s, each end's resets, concurrent groups.
// `unidentified`: the provider's count for this run (absent: it reported none). When it says
// that no connection from the agent was closed in a way that could reset it, a flow the
// provider never saw (not_run on its side) gets the provider's account "no reset sent, none
// received" -- so a reset the agent met on it before the provider could identify it (a DPI
// that answers the first BitTorrent packet with a RST) is proven forged. Otherwise such a flow
// has no provider account and no reset on it can be proven.
// A control flow is a clean reference when no BT flow to its port (either direction) ran in an
// earlier slot or its own (slots in group order), unless `bt_seen_earlier` (a rerun: the first
// run's BT flows went to every port).
std::vector<flow_record>
to_flow_records(std::span<const measured_flow> flows,
                const std::optional<unidentified_connections>& unidentified = std::nullopt,
                bool bt_seen_earlier = false);

// The verdict of comparison `k` in `a`, null when `a` has none.
const port_verdict* find_verdict(const test_analysis& a, const comparison_key& k) noexcept;
port_verdict* find_verdict(test_analysis& a, const comparison_key& k) noexcept;

// A comparison whose confirmation is another comparison's rerun: when both ports of a direction
// gave the same kind of accusation on the same basis -- content (BitTorrent penalised whatever
// its port) or endpoint (any payload penalised once BitTorrent was seen) -- the two ports test
// one hypothesis, and one port's rerun confirms or clears it for both. `pooled` was not rerun;
// `by` was (same direction).
struct pooled_confirmation {
    comparison_key pooled;
    comparison_key by;
};

// Takes the comparisons of `wanted` (comparisons_to_confirm of `first`) that can be pooled out
// of it: per direction, the BT port's comparison onto the neutral port's, whose rerun is the
// cheaper (it needs no port reference: make_confirmation). Throttled and blocked count as the
// same kind here (merge_rerun's "both show at least a throttle"). An inconclusive comparison is
// never pooled: it has no hypothesis to share. Halves the rerun of a content or endpoint
// throttle (8 flows instead of 16 for all four comparisons).
std::vector<pooled_confirmation> pool_confirmations(const test_analysis& first,
                                                    std::vector<comparison_key>& wanted);

// The BT-port comparisons of `wanted` whose first-run verdict is a port one (throttled or blocked
// on basis port): their rerun needs only control flows (make_confirmation's controls_only).
std::vector<comparison_key> controls_only_confirmations(const test_analysis& first,
                                                        std::span<const comparison_key> wanted);

struct test_data {
    std::vector<std::vector<measured_flow>> runs; // [0] the test, [1] its confirmation rerun
    // Per run, the provider's unidentified connections (absent, or shorter than runs: not
    // reported).
    std::vector<std::optional<unidentified_connections>> unidentified;
    std::vector<test_analysis> run_analyses; // one per run
    // The (direction, port) comparisons each run after the first was meant to confirm; only
    // those verdicts are merged (a rerun also yields partial entries for the ports its paired
    // flows touch, which confirm nothing).
    std::vector<std::vector<comparison_key>> confirmed_keys;
    // A comparison rerun in both the first rerun and a later one (confirmed_keys[0] and [1]) is a
    // tie-break (tie_breaks_wanted): its verdict is the later rerun merged with whichever of the
    // first two runs was positive.
    // Comparisons of the first run that asked for a confirmation the byte budget had no room
    // for (fit_confirmation): a throttled or blocked verdict of theirs is reported inconclusive,
    // since one run can neither accuse nor clear.
    std::vector<comparison_key> unconfirmed_keys;
    // Comparisons of the first run confirmed by another one's rerun (pool_confirmations). After
    // a rerun, each keeps its accusation, confirmed, when the merged verdict of its `by` is a
    // confirmed accusation on the same basis; otherwise it becomes inconclusive, like a
    // comparison whose own rerun did not agree (or was left unconfirmed by the byte budget).
    std::vector<pooled_confirmation> pooled;
    test_analysis analysis; // merged over the runs
    // How directions were paired (schedule.hpp): the mode asked for, whether upload flows ran
    // beside their download twins (in some run), and the rates of the first control flow of
    // each direction the automatic mode decided on, bit/s, as the agent measured them (0: not
    // measured), and the pace of the upload flows that ran beside a download on a path too
    // asymmetric to pair unpaced (schedule.hpp paired_upload_pace_bps; 0: none).
    direction_pairing pairing = direction_pairing::apart;
    bool directions_together = false;
    double pairing_upload_bps = 0.0;
    double pairing_download_bps = 0.0;
    std::uint64_t paired_upload_pace_bps = 0;
    // The automatic mode's steadiness of the first download control flow (schedule.hpp
    // steady_fraction; nullopt: not measured, or too few intervals to tell).
    std::optional<double> pairing_steady_fraction;
};

// The comparisons of the first rerun (confirmed_keys[0]) whose two runs split between a positive
// verdict and an inconclusive one: neither accuses nor clears, and the inconclusive run says
// nothing against the positive one (a cross traffic burst that reached the reference flows, seen
// in tests/emu cross_throttle). A third run (run 2) breaks the tie: analyse_runs merges it with
// the positive run alone, so an accusation still needs two runs that agree. Empty unless `data`
// holds exactly the first run and its rerun, analysed.
std::vector<comparison_key> tie_breaks_wanted(const test_data& data);

// Records that comparison `k` of the first run goes unconfirmed (the byte budget has no room for
// its rerun, or for a slot of it): it joins unconfirmed_keys, and so does every comparison
// pooled onto it, which leaves `pooled`.
void give_up_confirmation(test_data& data, const comparison_key& k);

// Analyses every run and merges the reruns' confirmed comparisons into the first
// (analysis/verdict.hpp merge_rerun), then the pooled ones (see `pooled`); unconfirmed_keys'
// positive verdicts become inconclusive.
status analyse_runs(test_data& data);

// Bytes the agent's flows moved over all runs so far, both directions, on the wire: what the
// byte budget counts.
std::uint64_t agent_bytes(const test_data& data) noexcept;

// The comparisons of a first run that ask for a confirmation rerun (verdict.hpp
// needs_confirmation), in the analysis's order.
std::vector<comparison_key> comparisons_to_confirm(const test_analysis& analysis);

} // namespace glasnode::proto::diff
