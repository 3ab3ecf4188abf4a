#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sim/scenario.hpp"

namespace glasnode::sim {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path scenarios_dir = GLASNODE_SIM_SCENARIOS;

std::vector<std::filesystem::path> scenario_files() {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(scenarios_dir))
        if (e.path().extension() == ".toml")
            files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

TEST(sim_scenario, every_shipped_file_loads) {
    const auto files = scenario_files();
    // One per modelled policy, and a noisy neutral path.
    ASSERT_GE(files.size(), 7u);
    for (const auto& f : files) {
        auto s = load_scenario(f);
        EXPECT_TRUE(s.ok()) << f << ": " << (s ? "" : s.err().describe());
    }
}

TEST(sim_scenario, reads_every_field) {
    auto s = parse_scenario(R"(
name = "mixed"
description = "every key"
seed = 77
[path]
rate_mbps = 50
upload_rate_mbps = 5.5
rtt_ms = 35.5
noise = 0.2
initial_window = 4
control_latency_ms = 3
[policy]
kind = "delayed-throttle"
fraction = 0.3
after_bytes = 1_000
match = "port"
port = 6889
directions = ["upload"]
[test]
flow_ms = 3000
repetitions = 3
pairs = 1
confirm = false
[[expect]]
direction = "upload"
port = "bt"
verdict = "throttled"
basis = "port"
[[expect]]
direction = "download"
port = "neutral"
verdict = "none"
)",
                            "mixed.toml");
    ASSERT_TRUE(s.ok()) << s.err().describe();
    EXPECT_EQ(s->name, "mixed");
    EXPECT_EQ(s->description, "every key");
    EXPECT_EQ(s->seed, 77u);
    EXPECT_DOUBLE_EQ(s->path.download_bps, 50e6);
    EXPECT_DOUBLE_EQ(s->path.upload_bps, 5.5e6);
    EXPECT_EQ(s->path.rtt, 35'500us);
    EXPECT_DOUBLE_EQ(s->path.noise, 0.2);
    EXPECT_EQ(s->path.initial_window, 4u);
    EXPECT_EQ(s->control_latency, 3ms);
    EXPECT_EQ(s->policy_kind, "delayed-throttle");
    EXPECT_EQ(s->policy.action, policy_action::throttle);
    EXPECT_EQ(s->policy.match, policy_match::port);
    EXPECT_EQ(s->policy.port, 6889);
    EXPECT_DOUBLE_EQ(s->policy.fraction, 0.3);
    EXPECT_EQ(s->policy.after_bytes, 1000u);
    EXPECT_FALSE(s->policy.download);
    EXPECT_TRUE(s->policy.upload);
    EXPECT_EQ(s->schedule.flow_duration, 3000ms);
    EXPECT_EQ(s->schedule.sequential_repetitions, 3u);
    EXPECT_EQ(s->schedule.concurrent_repetitions, 1u);
    EXPECT_FALSE(s->confirm);
    ASSERT_EQ(s->expect.size(), 2u);
    EXPECT_EQ(s->expect[0].dir, proto::direction::upload);
    EXPECT_EQ(s->expect[0].port, proto::test_port::bt);
    EXPECT_EQ(s->expect[0].outcome, proto::verdict::throttled);
    EXPECT_EQ(s->expect[0].why, proto::basis::port);
    EXPECT_FALSE(s->expect[1].why.has_value());

    const harness_options o = harness_for(*s, 9);
    EXPECT_EQ(o.seed, 9u);
    EXPECT_EQ(o.control_latency, 3ms);
    EXPECT_EQ(o.agent.schedule.flow_duration, 3000ms);
    EXPECT_FALSE(o.agent.confirm);
    EXPECT_EQ(o.policy.port, 6889);
}

TEST(sim_scenario, defaults_fill_what_a_minimal_file_leaves_out) {
    auto s = parse_scenario("[path]\nrate_mbps = 10\nrtt_ms = 30\n", "dir/minimal.toml");
    ASSERT_TRUE(s.ok()) << s.err().describe();
    EXPECT_EQ(s->name, "minimal");
    EXPECT_EQ(s->seed, 1u);
    EXPECT_DOUBLE_EQ(s->path.upload_bps, 10e6);
    EXPECT_EQ(s->control_latency, 15ms) << "half the RTT";
    EXPECT_EQ(s->policy.action, policy_action::none);
    EXPECT_EQ(s->schedule.flow_duration, 2500ms);
    EXPECT_EQ(s->schedule.sequential_repetitions, 2u);
    EXPECT_TRUE(s->confirm);
    EXPECT_TRUE(s->expect.empty());

    auto block = parse_scenario("[path]\nrate_mbps = 10\nrtt_ms = 30\n[policy]\nkind = \"block\"\n",
                                "b.toml");
    ASSERT_TRUE(block.ok()) << block.err().describe();
    EXPECT_EQ(block->policy.match, policy_match::port);
    EXPECT_EQ(block->policy.block, block_mode::drop);
    EXPECT_EQ(block->policy.port, 6881);
    auto stall = parse_scenario(
        "[path]\nrate_mbps = 10\nrtt_ms = 30\n[policy]\nkind = \"block\"\nmatch = \"content\"\n",
        "c.toml");
    ASSERT_TRUE(stall.ok()) << stall.err().describe();
    EXPECT_EQ(stall->policy.block, block_mode::stall);
}

struct bad_case {
    const char* text;
    const char* error; // how the error must begin
};

TEST(sim_scenario, a_bad_file_gets_one_line_naming_the_key) {
    // Tables after a valid [path].
    const std::string path = "[path]\nrate_mbps = 40\nrtt_ms = 20\n";
    const bad_case cases[] = {
        {"[policy]\nkind = \"block\"\nfraction = 0.5\n",
         "x.toml: policy.fraction: not used by policy kind 'block'"},
        {"[policy]\nkind = \"throttle\"\n", "x.toml: policy.kind: expected one of"},
        {"[policy]\nfraction = 0.5\n", "x.toml: policy.kind: required"},
        {"[policy]\nkind = \"content-throttle\"\n", "x.toml: policy.fraction: required"},
        {"[policy]\nkind = \"content-throttle\"\nfraction = 1.5\n",
         "x.toml: policy.fraction: must be above 0 and at most 1 (got 1.5)"},
        {"[policy]\nkind = \"delayed-throttle\"\nfraction = 0.5\n",
         "x.toml: policy.after_bytes: required above 0"},
        {"[policy]\nkind = \"block\"\nmatch = \"content\"\nmode = \"drop\"\n",
         "x.toml: policy.mode: 'drop' needs match = \"port\""},
        {"[policy]\nkind = \"forged-reset\"\nport = 6881\n",
         "x.toml: policy.port: only with match = \"port\""},
        {"[policy]\nkind = \"block\"\nport = 70000\n",
         "x.toml: policy.port: must be from 1 to 65535"},
        {"[policy]\nkind = \"port-throttle\"\nfraction = 0.5\ndirections = []\n",
         "x.toml: policy.directions:"},
        {"[policy]\nkind = \"forged-reset\"\nafter_bytes = -1\n", "x.toml: policy.after_bytes:"},
        {"[test]\nrepetitions = 9\n", "x.toml: test.repetitions: must be from 1 to 5 (got 9)"},
        {"[test]\nflow_ms = 100\n", "x.toml: test.flow_ms: must be from 500 to 30000"},
        {"[test]\nflow_ms = 30000\nrepetitions = 5\n", "x.toml: test: a provider would refuse"},
        {"[test]\nconfirm = \"yes\"\n", "x.toml: test.confirm: expected true or false"},
        {"[test]\nflows = 3\n", "x.toml: test.flows: unknown key"},
        {"[[expect]]\ndirection = \"download\"\nport = \"bt\"\nverdict = \"slow\"\n",
         "x.toml: expect[0].verdict: expected one of"},
        {"[[expect]]\ndirection = \"download\"\nverdict = \"none\"\n",
         "x.toml: expect[0]: needs direction, port and verdict"},
        {"[[expect]]\ndirection = \"download\"\nport = \"bt\"\nverdict = \"none\"\n"
         "[[expect]]\ndirection = \"download\"\nport = \"bt\"\nverdict = \"none\"\n",
         "x.toml: expect[1]: a second expectation for download/bt"},
    };
    for (const bad_case& c : cases) {
        auto s = parse_scenario(path + c.text, "x.toml");
        ASSERT_FALSE(s.ok()) << c.text;
        EXPECT_EQ(s.err().code, errc::invalid_argument);
        EXPECT_EQ(s.err().reason.rfind(c.error, 0), 0u) << "for:\n"
                                                        << c.text << "got: " << s.err().reason;
        EXPECT_EQ(s.err().reason.find('\n'), std::string::npos) << s.err().reason;
    }

    // Whole files.
    const bad_case files[] = {
        {"[path]\nrate_mbps = 0\nrtt_ms = 20\n", "x.toml: path.rate_mbps: must be above 0"},
        {"[path]\nrate_mbps = \"fast\"\nrtt_ms = 20\n",
         "x.toml: path.rate_mbps: expected a number"},
        {"[path]\nrate_mbps = 40\n", "x.toml: path.rtt_ms: required"},
        {"[path]\nrate_mbps = 40\nrtt_ms = 0.5\n", "x.toml: path.rtt_ms: must be at least 1"},
        {"[path]\nrate_mbps = 40\nrtt_ms = 20\nnoise = nan\n", "x.toml: path.noise: must be"},
        {"[path]\nrate_mbps = 40\nrtt_ms = 20\nrate = 3\n", "x.toml: path.rate: unknown key"},
        {"[path]\nrate_mbps = 40\nrtt_ms = 20\ninitial_window = 0\n",
         "x.toml: path.initial_window: must be from 1"},
        {"path = 3\n", "x.toml: path: expected a table"},
        {"colour = \"blue\"\n[path]\nrate_mbps = 40\nrtt_ms = 20\n", "x.toml: colour: unknown key"},
        {"expect = 3\n[path]\nrate_mbps = 40\nrtt_ms = 20\n",
         "x.toml: expect: expected [[expect]] tables"},
        {"seed = -4\n[path]\nrate_mbps = 40\nrtt_ms = 20\n", "x.toml: seed: must be from 0"},
        {"name = \"x\"\n", "x.toml: path: required"},
        {"[path]\nrate_mbps = 40\nrtt_ms = 20\n[policy\n", "x.toml:4: "},
    };
    for (const bad_case& c : files) {
        auto s = parse_scenario(c.text, "x.toml");
        ASSERT_FALSE(s.ok()) << c.text;
        EXPECT_EQ(s.err().reason.rfind(c.error, 0), 0u) << "for:\n"
                                                        << c.text << "got: " << s.err().reason;
        EXPECT_EQ(s.err().reason.find('\n'), std::string::npos) << s.err().reason;
    }
}

TEST(sim_scenario, a_missing_file_is_not_found) {
    auto s = load_scenario(scenarios_dir / "no-such-scenario.toml");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::not_found);
    EXPECT_NE(s.err().reason.find("no-such-scenario.toml"), std::string::npos);
}

TEST(sim_scenario, expectations_are_checked_per_direction_and_port) {
    auto s = parse_scenario(R"([path]
rate_mbps = 40
rtt_ms = 20
[[expect]]
direction = "download"
port = "bt"
verdict = "throttled"
basis = "content"
[[expect]]
direction = "upload"
port = "neutral"
verdict = "none"
[[expect]]
direction = "upload"
port = "bt"
verdict = "none"
)",
                            "e.toml");
    ASSERT_TRUE(s.ok()) << s.err().describe();
    proto::test_analysis a;
    proto::port_verdict v;
    v.dir = proto::direction::download;
    v.port = proto::test_port::bt;
    v.outcome = proto::verdict::throttled;
    v.why = proto::basis::port; // right verdict, wrong basis
    a.verdicts.push_back(v);
    v.dir = proto::direction::upload;
    v.port = proto::test_port::neutral;
    v.outcome = proto::verdict::none;
    v.why = proto::basis::none;
    a.verdicts.push_back(v);
    const auto checks = check_expectations(*s, a);
    ASSERT_EQ(checks.size(), 3u);
    EXPECT_FALSE(checks[0].met);
    EXPECT_EQ(checks[0].actual, proto::verdict::throttled);
    EXPECT_EQ(checks[0].actual_basis, proto::basis::port);
    EXPECT_TRUE(checks[1].met);
    EXPECT_FALSE(checks[2].met) << "no verdict for upload/bt";
    EXPECT_FALSE(checks[2].actual.has_value());
}

} // namespace
} // namespace glasnode::sim
