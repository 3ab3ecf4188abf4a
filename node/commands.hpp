// The glasnode subcommands. Each returns the process exit status: 0 success, 1 failure at run
// time (message on stderr), 2 bad usage or configuration.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "node/settings.hpp"

namespace glasnode::node {

int cmd_keygen(const settings& s);
int cmd_status(const settings& s, bool json);
int cmd_run(const settings& s);
int cmd_config(const settings& s, bool markdown, bool effective);
// Opens an authenticated control channel to `target` ("HOST:PORT") and sends `count` pings.
// `peer_id` (hex), when given, must match the key the peer authenticates with.
// How a person asked for a differential test (`glasnode test` and the demo).
struct test_request {
    std::string target; // "HOST:CONTROL_PORT"
    bool json = false;
    bool confirm = true;
    unsigned flow_duration_ms = 2500;
    unsigned repetitions = 2;
    unsigned pairs = 0;               // repetitions of the concurrent pairs (paired rule)
    bool directions_together = false; // --directions-together: same as directions "together"
    std::string directions = "auto";  // "auto" | "apart" | "together" (schedule.hpp)
    double max_rate_mbps = 100.0;     // the seeds' pacing cap (0: none)
    double max_test_mb = 0.0;         // the test's byte budget, confirmation included (0: none)
    double time_budget_s = 60.0;      // the test's time budget (0: none): reruns' flow length
    std::string congestion_control;
    std::string peer_id;   // hex; empty: accept any key
    std::string only_kind; // "bt" | "control": classifier checks; empty: both
};
// Runs one full test against a provider and prints it (a table, or one JSON object); stores
// it. 0 when the test ran, whatever the verdicts; 128 + N when signal N (SIGINT, SIGTERM)
// abandoned it.
int cmd_test(const settings& s, const test_request& request);
// Lists stored results, newest first (`limit` 0: all), or one by test-id prefix.
int cmd_results(const settings& s, std::size_t limit, bool json, const std::string& test_id);
// Judges stored reports anew with the current analysis: each file holds one report (`glasnode
// test --json`) or an array of them (`glasnode results --json`). Prints a table per report, or
// one JSON object per line. 0 when every report was read, 1 otherwise (the others still print).
int cmd_analyse(const std::vector<std::string>& files, bool json);
// A local overlay on loopback: a provider node and an agent node in this process, one full
// test between them, its verdicts printed.
int cmd_demo(const settings& s, const test_request& request);
int cmd_ping(const settings& s, const std::string& target, unsigned count,
             const std::string& peer_id);
// Simulates one differential test as the scenario file describes it (sim/README.md): the real
// agent and provider cores and the real analysis on a modelled path, in virtual time. Prints
// the verdicts, the seed and the run's trace hash (a table, or one JSON object). `seed`: the
// master seed as typed; empty: the scenario's. 0 when the simulation ran, whatever its verdicts
// (a simulated test that failed included); 2 for a bad scenario file or seed.
int cmd_sim(const std::string& file, const std::optional<std::string>& seed, bool json);

} // namespace glasnode::node
