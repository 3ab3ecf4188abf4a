// The test data's analysis input (tests_proto/diff/test_data.hpp): how each end's account of a
// flow becomes the resets the analysis may call forged, in particular for a connection a DPI
// reset before the provider could tell which flow it was.

#include <algorithm>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "tests_proto/analysis/verdict.hpp"
#include "tests_proto/diff/test_data.hpp"

namespace glasnode::proto::diff {
namespace {

flow_spec spec(std::uint16_t index, direction dir, test_port port, flow_kind kind) {
    flow_spec s;
    s.index = index;
    s.dir = dir;
    s.port = port;
    s.kind = kind;
    s.group = index;
    s.duration_ms = 2500;
    return s;
}

// Calls f(spec) for the 16 flows of the default test: two repetitions of BT and control on both
// ports, download and upload, indexed in that order.
template <class F>
void for_each_default_flow(F&& f) {
    std::uint16_t i = 0;
    for (std::uint32_t rep = 0; rep < 2; ++rep)
        for (direction d : {direction::download, direction::upload})
            for (test_port p : {test_port::bt, test_port::neutral})
                for (flow_kind k : {flow_kind::bt, flow_kind::control})
                    f(spec(i++, d, p, k));
}

flow_measurement completed(std::uint16_t index, std::uint64_t per_interval) {
    flow_measurement m;
    m.index = index;
    m.end = flow_end::completed;
    m.duration_us = 2'500'000;
    m.sample_interval_us = 250'000;
    m.samples.assign(10, per_interval);
    m.payload_bytes = per_interval * 10;
    return m;
}

// Two repetitions of BT and control on both ports, download and upload. BT flows are reset by
// the path before their handshake reaches the provider: the agent saw a RST (sent none), the
// provider never saw the flow (not_run). Control flows complete at 40 Mbit/s.
struct early_reset_test {
    std::vector<flow_spec> schedule;
    std::vector<flow_measurement> agent;
    std::vector<flow_measurement> provider;

    early_reset_test() {
        for_each_default_flow([&](const flow_spec& s) {
            schedule.push_back(s);
            if (s.kind == flow_kind::bt) {
                flow_measurement a;
                a.index = s.index;
                a.end = flow_end::reset_received;
                a.resets_received = 1;
                agent.push_back(a);
                flow_measurement pr;
                pr.index = s.index;
                pr.end = flow_end::not_run;
                provider.push_back(pr);
            } else {
                agent.push_back(completed(s.index, 1'250'000));
                provider.push_back(completed(s.index, 1'250'000));
            }
        });
    }

    test_analysis analyse_with(std::optional<unidentified_connections> u) const {
        test_data data;
        data.runs.push_back(match_measurements(schedule, agent, provider));
        data.unidentified.push_back(u);
        EXPECT_TRUE(analyse_runs(data).ok());
        return data.analysis;
    }
};

TEST(TestData, AResetBeforeTheProviderSawTheFlowIsForgedWhenTheProviderResetNothing) {
    const early_reset_test t;
    // Eight connections the provider could not identify, closed by the path (a RST reached
    // the provider too), none closed by the provider in a way that could reset the agent.
    const test_analysis a = t.analyse_with(unidentified_connections{8, 8, 0});
    ASSERT_EQ(a.verdicts.size(), 4u);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.outcome, verdict::reset_injected) << to_string(v.dir) << to_string(v.port);
        EXPECT_EQ(v.why, basis::content);
        EXPECT_TRUE(v.forged_reset);
    }
}

TEST(TestData, WithoutTheProvidersWordNoResetIsProven) {
    const early_reset_test t;
    // An older provider (no count), or one that closed a connection of the agent's itself:
    // the resets may be the provider's, so nothing is called forged.
    for (const auto& u : {std::optional<unidentified_connections>{},
                          std::optional<unidentified_connections>{{8, 0, 1}}}) {
        const test_analysis a = t.analyse_with(u);
        ASSERT_EQ(a.verdicts.size(), 4u);
        for (const port_verdict& v : a.verdicts) {
            EXPECT_NE(v.outcome, verdict::reset_injected);
            EXPECT_FALSE(v.forged_reset);
        }
    }
}

TEST(TestData, AttestedFlowsTakeTheProvidersSide) {
    const early_reset_test t;
    const auto flows = match_measurements(t.schedule, t.agent, t.provider);
    const auto records = to_flow_records(flows, unidentified_connections{0, 0, 0});
    ASSERT_EQ(records.size(), flows.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
        const flow_record& r = records[i];
        if (r.kind != flow_kind::bt)
            continue;
        // Download: the provider sends (sender side); upload: it receives.
        const auto& provider_side =
            r.dir == direction::download ? r.sender_resets : r.receiver_resets;
        ASSERT_TRUE(provider_side.has_value());
        EXPECT_EQ(provider_side->sent, 0u);
        EXPECT_TRUE(has_forged_reset(r));
    }
}

} // namespace
} // namespace glasnode::proto::diff

namespace glasnode::proto::diff {
namespace {

// Both ends' account of a test whose BT flows ran at 2 Mbit/s and control flows at 40 Mbit/s.
test_data throttled_test() {
    std::vector<flow_spec> schedule;
    std::vector<flow_measurement> agent, provider;
    for_each_default_flow([&](const flow_spec& s) {
        schedule.push_back(s);
        const std::uint64_t per_interval = s.kind == flow_kind::bt ? 62'500 : 1'250'000;
        agent.push_back(completed(s.index, per_interval));
        agent.back().bytes_sent = 1000;
        agent.back().bytes_received = per_interval * 10;
        provider.push_back(completed(s.index, per_interval));
    });
    test_data data;
    data.runs.push_back(match_measurements(schedule, agent, provider));
    data.unidentified.emplace_back();
    return data;
}

TEST(TestData, APositiveVerdictTheBudgetLeftUnconfirmedIsInconclusive) {
    test_data data = throttled_test();
    ASSERT_TRUE(analyse_runs(data).ok());
    for (const auto& v : data.analysis.verdicts)
        ASSERT_EQ(v.outcome, verdict::throttled) << to_string(v.dir) << " " << to_string(v.port);
    data.unconfirmed_keys = {{direction::download, test_port::bt}};
    ASSERT_TRUE(analyse_runs(data).ok());
    for (const auto& v : data.analysis.verdicts) {
        const bool skipped = v.dir == direction::download && v.port == test_port::bt;
        EXPECT_EQ(v.outcome, skipped ? verdict::inconclusive : verdict::throttled);
        if (skipped) {
            EXPECT_EQ(v.why, basis::none);
            EXPECT_FALSE(v.onset.has_value());
        }
    }
}

port_verdict judged(direction d, test_port p, verdict v, basis b) {
    port_verdict out;
    out.dir = d;
    out.port = p;
    out.outcome = v;
    out.why = b;
    return out;
}

TEST(TestData, BothPortsAccusingOnOneBasisShareTheNeutralPortsRerun) {
    test_analysis a;
    // download: content on both ports (pooled); upload: port on bt, content on neutral (not).
    a.verdicts = {
        judged(direction::download, test_port::bt, verdict::throttled, basis::content),
        judged(direction::download, test_port::neutral, verdict::blocked, basis::content),
        judged(direction::upload, test_port::bt, verdict::throttled, basis::port),
        judged(direction::upload, test_port::neutral, verdict::throttled, basis::content)};
    std::vector<comparison_key> wanted = comparisons_to_confirm(a);
    ASSERT_EQ(wanted.size(), 4u);
    const auto pooled = pool_confirmations(a, wanted);
    ASSERT_EQ(pooled.size(), 1u);
    EXPECT_EQ(pooled[0].pooled.dir, direction::download);
    EXPECT_EQ(pooled[0].pooled.port, test_port::bt);
    EXPECT_EQ(pooled[0].by.dir, direction::download);
    EXPECT_EQ(pooled[0].by.port, test_port::neutral);
    ASSERT_EQ(wanted.size(), 3u);
    for (const auto& k : wanted)
        EXPECT_FALSE(k.dir == direction::download && k.port == test_port::bt);

    // Endpoint pools too; an inconclusive port does not (nothing to share), nor a comparison
    // that is not wanted.
    a.verdicts = {
        judged(direction::download, test_port::bt, verdict::throttled, basis::endpoint),
        judged(direction::download, test_port::neutral, verdict::throttled, basis::endpoint),
        judged(direction::upload, test_port::bt, verdict::throttled, basis::content),
        judged(direction::upload, test_port::neutral, verdict::inconclusive, basis::none)};
    wanted = comparisons_to_confirm(a);
    EXPECT_EQ(pool_confirmations(a, wanted).size(), 1u);
    EXPECT_EQ(wanted.size(), 3u);
    wanted = {{direction::download, test_port::bt}};
    EXPECT_TRUE(pool_confirmations(a, wanted).empty());
    EXPECT_EQ(wanted.size(), 1u);
}

TEST(TestData, APooledComparisonFollowsItsConfirmation) {
    // Every BT flow throttled on both runs: the neutral ports' reruns confirm the BT ports.
    test_data data = throttled_test();
    ASSERT_TRUE(analyse_runs(data).ok());
    std::vector<comparison_key> wanted = comparisons_to_confirm(data.analysis);
    data.pooled = pool_confirmations(data.analysis, wanted);
    ASSERT_EQ(data.pooled.size(), 2u);
    std::vector<measured_flow> rerun;
    for (const auto& f : data.runs.front())
        if (f.spec.port == test_port::neutral)
            rerun.push_back(f);
    data.runs.push_back(rerun);
    data.unidentified.emplace_back();
    data.confirmed_keys = {wanted};
    ASSERT_TRUE(analyse_runs(data).ok());
    for (const auto& v : data.analysis.verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled) << to_string(v.dir) << " " << to_string(v.port);
        EXPECT_TRUE(v.confirmed);
        EXPECT_EQ(v.confirmed_by.has_value(), v.port == test_port::bt);
    }
    // The download's neutral rerun clears (BT at the control's rate): both download ports are
    // inconclusive, the upload stays confirmed.
    for (auto& f : data.runs[1]) {
        if (f.spec.dir != direction::download || f.spec.kind != flow_kind::bt)
            continue;
        const auto twin =
            std::find_if(data.runs[1].begin(), data.runs[1].end(), [&](const auto& g) {
                return g.spec.dir == f.spec.dir && g.spec.kind == flow_kind::control;
            });
        ASSERT_NE(twin, data.runs[1].end());
        f.agent.samples = twin->agent.samples;
        f.provider.samples = twin->provider.samples;
        f.agent.payload_bytes = twin->agent.payload_bytes;
        f.provider.payload_bytes = twin->provider.payload_bytes;
    }
    ASSERT_TRUE(analyse_runs(data).ok());
    for (const auto& v : data.analysis.verdicts) {
        const bool download = v.dir == direction::download;
        EXPECT_EQ(v.outcome, download ? verdict::inconclusive : verdict::throttled)
            << to_string(v.dir) << " " << to_string(v.port);
        EXPECT_EQ(v.confirmed, !download);
    }
    // Given up (the byte budget): the pooled comparison goes with it.
    give_up_confirmation(data, {direction::upload, test_port::neutral});
    EXPECT_EQ(data.unconfirmed_keys.size(), 2u);
    EXPECT_EQ(data.pooled.size(), 1u);
}

TEST(TestData, AgentBytesCountBothDirectionsOfEveryRun) {
    test_data data = throttled_test();
    // 8 BT flows of 625,000 bytes and 8 control flows of 12,500,000, plus 1000 sent each.
    EXPECT_EQ(agent_bytes(data), 8u * 625'000u + 8u * 12'500'000u + 16u * 1000u);
    data.runs.push_back(data.runs.front());
    EXPECT_EQ(agent_bytes(data), 2u * (8u * 625'000u + 8u * 12'500'000u + 16u * 1000u));
}

TEST(test_data, clean_references_are_the_control_flows_before_any_bt_flow_to_their_port) {
    seeded_random rng(3);
    const auto schedule = make_schedule({}, rng);
    std::vector<flow_measurement> agent, provider;
    for (const flow_spec& f : schedule) {
        agent.push_back(completed(f.index, 1'000'000));
        provider.push_back(completed(f.index, 1'000'000));
    }
    const auto flows = match_measurements(schedule, agent, provider);
    const auto records = to_flow_records(flows);
    ASSERT_EQ(records.size(), schedule.size());
    std::size_t clean = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (!records[i].clean_reference)
            continue;
        ++clean;
        EXPECT_EQ(records[i].kind, flow_kind::control);
        EXPECT_LT(schedule[i].group, 4u); // the schedule's four references, nothing later
    }
    EXPECT_EQ(clean, 4u);
    // A rerun: BitTorrent went to every port in the first run.
    for (const flow_record& r : to_flow_records(flows, std::nullopt, true))
        EXPECT_FALSE(r.clean_reference);
    // A BT flow that never ran on either end showed a classifier nothing.
    auto unrun = flows;
    for (measured_flow& f : unrun) {
        if (f.spec.kind == flow_kind::bt && f.spec.port == test_port::neutral) {
            f.agent.end = flow_end::not_run;
            f.provider.end = flow_end::not_run;
        }
    }
    std::size_t neutral_clean = 0;
    for (const flow_record& r : to_flow_records(unrun))
        neutral_clean += r.clean_reference && r.port == test_port::neutral ? 1 : 0;
    EXPECT_EQ(neutral_clean, 4u); // every control flow on the neutral port
}

// 50/5 Mbit/s paired with the uploads paced at 3.2 Mbit/s: the upload references (before the
// pairing) ran unpaced at 4.8, every later upload flow at its pace. Compared as measured, the
// later ones would look penalised; at the pace, the path is neutral.
TEST(TestData, PairedUploadsAreComparedAtTheirPace) {
    seeded_random rng(3);
    const auto schedule = make_schedule({}, rng);
    std::vector<flow_measurement> agent, provider;
    for (const flow_spec& f : schedule) {
        const bool reference = f.kind == flow_kind::control && f.group < 4;
        const std::uint64_t per_interval = f.dir == direction::download ? 1'406'250
                                           : reference                  ? 150'000
                                                                        : 101'250;
        agent.push_back(completed(f.index, per_interval));
        provider.push_back(completed(f.index, per_interval));
    }
    test_data data;
    data.runs.push_back(match_measurements(schedule, agent, provider));
    data.unidentified.emplace_back();
    ASSERT_TRUE(analyse_runs(data).ok());
    const auto positive = std::count_if(
        data.analysis.verdicts.begin(), data.analysis.verdicts.end(),
        [](const port_verdict& v) { return v.dir == direction::upload && is_positive(v.outcome); });
    EXPECT_GT(positive, 0); // unclipped, the references make the rest look penalised
    data.paired_upload_pace_bps = 3'200'000;
    ASSERT_TRUE(analyse_runs(data).ok());
    ASSERT_EQ(data.analysis.verdicts.size(), 4u);
    for (const port_verdict& v : data.analysis.verdicts)
        EXPECT_EQ(v.outcome, verdict::none) << to_string(v.dir) << " " << to_string(v.port);
}

} // namespace
} // namespace glasnode::proto::diff
