// One differential test as a person and a program read it: the flows of each run (the first
// run and its confirmation rerun), the analysis of each run and the merged verdicts, as a
// table for a terminal, as the JSON object of `glasnode test --json`, and as the record kept
// in the results store.
//
// JSON contract (fields are added, never renamed): test_id, role, started_at (RFC 3339 UTC),
// started_unix_ms, duration_s, peer {id, address}, verdicts [{direction, port, verdict, basis,
// bt_mbps, control_mbps, ratio, ks_p, area, confirmed, runs, content_comparison,
// port_comparison}] where a comparison is {outcome, glasnost, peak, wehe, paired, test_flows,
// reference_flows, test_failed, reference_failed}, flows
// [{run, index, direction, port, kind, group, repetition, concurrent, mbps, end, agent_end,
// provider_end, resets {agent_sent, agent_received, provider_sent, provider_received},
// connect_ms, min_rtt_ms, retransmits, interval_ms, duration_us, samples}], runs,
// confirmations [[{direction, port}] per rerun], congestion_control, unconfirmed [{direction,
// port}] (asked for a rerun the byte budget had no room for), max_rate_mbps (the seeds' pacing
// cap, 0: none), byte_budget_mb (0: none), agent_wire_mb (what the agent's flows moved, both
// ways). `samples` are the receiver's
// payload bytes per interval. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node/diff/flows.hpp"
#include "node/results_store.hpp"
#include "tests_proto/analysis/verdict.hpp"
#include "tests_proto/diff/schedule.hpp"
#include "tests_proto/diff/test_data.hpp"

namespace glasnode::node {

// The test's data (runs, confirmations, verdicts: tests_proto/diff/test_data.hpp) with who ran
// it, when and against whom.
struct test_report : proto::diff::test_data {
    std::string test_id;
    std::string role = "agent"; // "agent" | "provider"
    std::uint64_t started_unix_ms = 0;
    double duration_s = 0;
    std::string peer_id;
    std::string peer_address;
    // The congestion control the test asked for; empty: each host's default.
    std::string congestion_control;
    // The seeds' pacing cap the agent asked for, bit/s (0: none), and the test's byte budget
    // (0: none): proto::diff::schedule_params.
    std::uint64_t max_rate_bps = 0;
    std::uint64_t max_test_bytes = 0;
    // The test's time budget, ms (0: none): schedule_params time_budget.
    std::uint64_t time_budget_ms = 0;
};

// The congestion control the flows' senders used, as their sockets named it: one name, several
// joined by "/" in sorted order (e.g. "bbr/cubic" when the two hosts' defaults differ), or empty
// when no flow reported one.
std::string congestion_control_used(const proto::diff::test_data& data);

nlohmann::json to_json(const test_report& r);
// Reads a report written by to_json back (`glasnode analyse`): the runs of measured flows, as
// far as the analysis needs them (each end's flow end and resets, the receiver's samples and
// duration), and the comparisons each rerun confirmed (`confirmations`; in reports written
// before that field, those the rerun's sequential flows cover). The verdicts are not read:
// proto::diff::analyse_runs judges the flows anew. Errors: errc::invalid_argument naming the field
// that is missing or malformed; errc::limit_exceeded past proto::max_flows flows or
// max_samples_per_flow samples a flow.
result<test_report> report_from_json(const nlohmann::json& j);
// A table of verdicts with the figures behind them, for a person.
std::string to_table(const test_report& r);
test_record to_record(const test_report& r);
// The table of a stored record (from its verdicts), for `glasnode results`.
std::string to_table(const test_record& r);

} // namespace glasnode::node
