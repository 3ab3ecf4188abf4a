// Scenario files of the simulator: one TOML file describes a path (bottleneck, RTT, noise), an
// ISP policy, the test to run and the verdicts expected of it. The format is documented in
// sim/README.md; sim/scenarios/ holds one file per modelled policy.
//
// Every value is checked against a bound before it is used (rates, RTTs, byte counts, flow
// lengths, repetitions; the schedule it implies against the provider's bounds), and every key
// must be known, so a typo is an error rather than a silently ignored setting.
//
// Errors: load_scenario returns errc::not_found for a missing file, errc::invalid_argument for
// a file that is not TOML ("FILE:LINE: what") or a value out of bounds, a wrong type or an
// unknown key ("FILE: policy.fraction: ..."): always one line naming the key. Nothing throws
// except std::bad_alloc.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/diff_harness.hpp"
#include "storage/result.hpp"
#include "tests_proto/analysis/verdict.hpp"
#include "tests_proto/diff/schedule.hpp"

namespace glasnode::sim {

// What a scenario expects the analysis to say about one (direction, port).
struct expected_verdict {
    proto::direction dir = proto::direction::download;
    proto::test_port port = proto::test_port::bt;
    proto::verdict outcome = proto::verdict::none;
    std::optional<proto::basis> why; // nullopt: any basis
};

struct scenario {
    std::string name;        // from the file, else the file's stem
    std::string description; // for people
    std::uint64_t seed = 1;  // when the command line gives none
    path_model path;
    std::string policy_kind = "neutral"; // as written in the file
    path_policy policy;
    std::chrono::microseconds control_latency{10'000};
    proto::diff::schedule_params schedule;
    bool confirm = true;
    std::vector<expected_verdict> expect;
};

// `source` names the text in errors (a file name).
result<scenario> parse_scenario(std::string_view toml_text, std::string_view source);
result<scenario> load_scenario(const std::filesystem::path& file);

// The harness run of a scenario under `seed`.
harness_options harness_for(const scenario& s, std::uint64_t seed);

struct expectation_check {
    expected_verdict expected;
    std::optional<proto::verdict> actual; // nullopt: the analysis has no such entry
    std::optional<proto::basis> actual_basis;
    bool met = false;
};

// Each expectation against the analysis, in the scenario's order.
std::vector<expectation_check> check_expectations(const scenario& s,
                                                  const proto::test_analysis& analysis);

} // namespace glasnode::sim
