#include <algorithm>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "sim/diff_harness.hpp"
#include "sim/scenario.hpp"

namespace glasnode::sim {
namespace {

using namespace std::chrono_literals;
using proto::verdict;
namespace nego = proto::negotiation;

const std::filesystem::path scenarios_dir = GLASNODE_SIM_SCENARIOS;

scenario load(const std::string& name) {
    auto s = load_scenario(scenarios_dir / (name + ".toml"));
    EXPECT_TRUE(s.ok()) << name << ": " << (s ? "" : s.err().describe());
    return s ? *s : scenario{};
}

harness_result run(const harness_options& o) {
    auto r = run_diff_test(o);
    EXPECT_TRUE(r.ok()) << (r ? "" : r.err().describe());
    return r ? std::move(*r) : harness_result{};
}

std::string describe(const proto::test_analysis& a) {
    std::string out;
    for (const auto& v : a.verdicts) {
        out += std::string(proto::to_string(v.dir)) + "/" + std::string(proto::to_string(v.port)) +
               "=" + std::string(proto::to_string(v.outcome)) + "(" +
               std::string(proto::to_string(v.why)) + ") ";
    }
    return out;
}

// Each shipped scenario, under its own seed and a few others: the real analysis gives the
// verdicts the file expects.
class sim_scenarios : public ::testing::TestWithParam<std::string> {};

TEST_P(sim_scenarios, give_the_expected_verdicts) {
    const scenario s = load(GetParam());
    ASSERT_FALSE(s.expect.empty()) << "a scenario without expectations checks nothing";
    for (std::uint64_t seed : {s.seed, std::uint64_t{2}, std::uint64_t{3}, std::uint64_t{4}}) {
        const harness_result r = run(harness_for(s, seed));
        ASSERT_TRUE(r.data.has_value())
            << "seed " << seed << ": " << (r.failure ? r.failure->describe() : "no outcome");
        for (const expectation_check& c : check_expectations(s, r.data->analysis)) {
            EXPECT_TRUE(c.met) << GetParam() << " seed " << seed << ": expected "
                               << proto::to_string(c.expected.dir) << "/"
                               << proto::to_string(c.expected.port) << " "
                               << proto::to_string(c.expected.outcome) << ", got "
                               << describe(r.data->analysis);
        }
        // The provider finished every run it granted, with the agent's measurements in hand.
        ASSERT_EQ(r.provider_tests.size(), r.runs_granted);
        ASSERT_EQ(r.provider_tests.size(), r.data->runs.size());
        for (std::size_t i = 0; i < r.provider_tests.size(); ++i) {
            const nego::test_finished& f = r.provider_tests[i];
            EXPECT_EQ(f.reason, nego::finish_reason::completed);
            EXPECT_EQ(f.agent_measurements.size(), f.schedule.size());
            EXPECT_EQ(f.provider_measurements.size(), f.schedule.size());
            EXPECT_EQ(f.schedule.size(), r.data->runs[i].size());
        }
        EXPECT_GT(r.agent_finished_at, 0ns);
        EXPECT_LE(r.agent_finished_at, r.ended_at);
    }
}

INSTANTIATE_TEST_SUITE_P(files, sim_scenarios,
                         ::testing::Values("neutral", "noisy_neutral", "content_throttle",
                                           "port_throttle", "block", "forged_reset",
                                           "delayed_throttle", "forged_reset_first_packet",
                                           "stateful_throttle"));

TEST(sim_harness, a_clean_test_runs_once_and_a_throttled_one_is_confirmed) {
    const harness_result clean = run(harness_for(load("neutral"), 1));
    ASSERT_TRUE(clean.data.has_value());
    EXPECT_EQ(clean.data->runs.size(), 1u) << "nothing to confirm";
    EXPECT_EQ(clean.data->runs[0].size(), 16u);
    for (const auto& f : clean.data->runs[0]) {
        EXPECT_EQ(f.agent.end, proto::flow_end::completed);
        EXPECT_EQ(f.provider.end, proto::flow_end::completed);
    }
    const harness_result throttled = run(harness_for(load("content_throttle"), 1));
    ASSERT_TRUE(throttled.data.has_value());
    EXPECT_EQ(throttled.data->runs.size(), 2u);
    // Content on both ports of each direction: the neutral port's rerun confirms both.
    EXPECT_EQ(throttled.data->runs[1].size(), 8u);
    for (const auto& v : throttled.data->analysis.verdicts) {
        EXPECT_TRUE(v.confirmed);
        EXPECT_EQ(v.runs, v.port == proto::test_port::neutral ? 2u : 1u);
        EXPECT_EQ(v.confirmed_by.has_value(), v.port == proto::test_port::bt);
    }
    // Reset-injected needs no rerun: the counters of both ends are proof.
    const harness_result reset = run(harness_for(load("forged_reset"), 1));
    ASSERT_TRUE(reset.data.has_value());
    EXPECT_EQ(reset.data->runs.size(), 1u);
}

// A throttle that starts after the first 5 MB of a connection leaves the flows' busiest intervals
// at full rate; the late rule sees the cut, and the verdicts say where it began.
TEST(sim_harness, delayed_throttle_is_throttled_with_its_onset) {
    const scenario s = load("delayed_throttle");
    for (std::uint64_t seed : {1, 2, 3}) {
        const harness_result r = run(harness_for(s, seed));
        ASSERT_TRUE(r.data.has_value());
        ASSERT_EQ(r.data->analysis.verdicts.size(), 4u);
        for (const auto& v : r.data->analysis.verdicts) {
            EXPECT_EQ(v.outcome, verdict::throttled) << describe(r.data->analysis);
            EXPECT_EQ(v.why, proto::basis::content) << describe(r.data->analysis);
            ASSERT_TRUE(v.onset.has_value()) << describe(r.data->analysis);
            // The cut is at 5 MB; the change point is the interval boundary before it.
            EXPECT_GT(v.onset->bytes, 4.0e6);
            EXPECT_LE(v.onset->bytes, 5.0e6);
            EXPECT_GT(v.onset->seconds, 0.5);
            EXPECT_LT(v.onset->seconds, 1.5);
        }
    }
}

TEST(sim_harness, same_seed_same_trace_another_seed_another) {
    const scenario s = load("content_throttle");
    const harness_result a = run(harness_for(s, 7));
    const harness_result b = run(harness_for(s, 7));
    const harness_result c = run(harness_for(s, 8));
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(a.events, b.events);
    EXPECT_EQ(a.ended_at, b.ended_at);
    ASSERT_TRUE(a.data && b.data);
    EXPECT_EQ(a.data->runs[0].front().agent, b.data->runs[0].front().agent);
    EXPECT_NE(a.trace_hash, c.trace_hash);
    // The policy is part of what happened, so it is part of the trace.
    const harness_result neutral = run(harness_for(load("neutral"), 7));
    EXPECT_NE(neutral.trace_hash, a.trace_hash);
}

TEST(sim_harness, the_agent_gives_up_within_its_silence_timeout_when_the_provider_goes_silent) {
    harness_options o = harness_for(load("neutral"), 1);
    o.provider_silent_after = 10s;
    const harness_result r = run(o);
    EXPECT_FALSE(r.data.has_value()) << "no test_done";
    ASSERT_TRUE(r.failure.has_value());
    EXPECT_EQ(r.failure->code, errc::timeout) << r.failure->describe();
    // The last message left the provider before 10 s and took one latency to arrive.
    EXPECT_GT(r.agent_finished_at, 10s);
    EXPECT_LE(r.agent_finished_at, 10s + o.control_latency + o.agent.silence_timeout);
    // The agent's close ends the provider's side of the test.
    ASSERT_EQ(r.provider_tests.size(), 1u);
    EXPECT_EQ(r.provider_tests[0].reason, nego::finish_reason::session_closed);
}

TEST(sim_harness, concurrent_pairs_let_the_paired_rule_judge) {
    auto s = parse_scenario(R"([path]
rate_mbps = 40
rtt_ms = 20
noise = 0.05
[policy]
kind = "content-throttle"
fraction = 0.4
[test]
repetitions = 2
pairs = 3
# Three pairs make a long test: its rerun would be shortened to fit a minute.
time_budget_s = 0
)",
                            "pairs.toml");
    ASSERT_TRUE(s.ok()) << s.err().describe();
    const harness_result r = run(harness_for(*s, 1));
    ASSERT_TRUE(r.data.has_value()) << (r.failure ? r.failure->describe() : "");
    const std::size_t concurrent =
        static_cast<std::size_t>(std::count_if(r.data->runs[0].begin(), r.data->runs[0].end(),
                                               [](const auto& f) { return f.concurrent; }));
    EXPECT_EQ(concurrent, 36u); // 3 repetitions x 2 directions x 3 pairs x 2 flows
    for (const auto& v : r.data->analysis.verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled) << describe(r.data->analysis);
        EXPECT_EQ(v.content.paired.decision, proto::rule_decision::differentiated);
        // Two flows share 40 Mbit/s: BT is held at 16, control takes the other 24.
        EXPECT_NEAR(v.content.paired.ratio, 16.0 / 24.0, 0.1);
    }
}

TEST(sim_harness, a_test_that_cannot_finish_in_the_time_limit_is_an_error) {
    harness_options o = harness_for(load("neutral"), 1);
    o.time_limit = 5s;
    auto r = run_diff_test(o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::timeout);
}

} // namespace
} // namespace glasnode::sim
