#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "tests_proto/analysis/verdict.hpp"

namespace glasnode::proto {
namespace {

constexpr double link_bps = 20e6;

// 100 interval samples within +-5% of `mean_bps`, in a pattern fixed by `phase`.
std::vector<double> samples_around(double mean_bps, unsigned phase) {
    std::vector<double> out;
    for (unsigned k = 0; k < 100; ++k) {
        const double wiggle = static_cast<double>(((k + phase) * 7919u) % 201u) / 100.0 - 1.0;
        out.push_back(mean_bps * (1.0 + 0.05 * wiggle));
    }
    return out;
}

flow_record make_flow(direction dir, test_port port, flow_kind kind, std::uint32_t rep,
                      double mean_bps) {
    flow_record f;
    f.dir = dir;
    f.port = port;
    f.kind = kind;
    f.repetition = rep;
    f.mean_bps = mean_bps;
    f.interval_s = 0.05;
    const unsigned phase = rep * 13u + (kind == flow_kind::bt ? 5u : 0u) +
                           (port == test_port::bt ? 29u : 0u) +
                           (dir == direction::upload ? 71u : 0u);
    f.interval_bps = samples_around(mean_bps, phase);
    f.sender_resets = reset_report{};
    f.receiver_resets = reset_report{};
    return f;
}

// Multiplier applied to the throughput of a flow, per (direction, port, kind).
using policy = double (*)(direction, test_port, flow_kind);
double neutral(direction, test_port, flow_kind) {
    return 1.0;
}

// A sequential test: both directions, both ports, both kinds, 3 repetitions.
std::vector<flow_record> sequential_test(policy p = neutral, std::uint32_t reps = 3) {
    std::vector<flow_record> flows;
    for (std::uint32_t rep = 0; rep < reps; ++rep) {
        for (direction dir : {direction::download, direction::upload}) {
            for (test_port port : {test_port::bt, test_port::neutral}) {
                for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
                    const double jitter = 1.0 - 0.02 * rep;
                    flows.push_back(
                        make_flow(dir, port, kind, rep, link_bps * jitter * p(dir, port, kind)));
                }
            }
        }
    }
    return flows;
}

const port_verdict& find(const test_analysis& a, direction dir, test_port port) {
    for (const port_verdict& v : a.verdicts) {
        if (v.dir == dir && v.port == port) {
            return v;
        }
    }
    ADD_FAILURE() << "no verdict for that direction and port";
    return a.verdicts.front();
}

test_analysis run(const std::vector<flow_record>& flows, const analysis_settings& s = {}) {
    auto r = analyse(flows, s);
    EXPECT_TRUE(r.ok());
    return r.ok() ? std::move(r).value() : test_analysis{};
}

void expect_all_finite(const test_analysis& a) {
    for (const port_verdict& v : a.verdicts) {
        for (double x :
             {v.bt_mbps, v.control_mbps, v.ratio, v.ks_p, v.area,
              v.content.glasnost.relative_difference, v.content.glasnost.test_noise,
              v.content.wehe.signed_area, v.content.paired.ratio, v.content.paired.ratio_low,
              v.content.paired.ratio_high, v.content.paired.p_value}) {
            EXPECT_TRUE(std::isfinite(x));
        }
    }
}

TEST(Verdict, Strings) {
    EXPECT_EQ(to_string(verdict::none), "none");
    EXPECT_EQ(to_string(verdict::throttled), "throttled");
    EXPECT_EQ(to_string(verdict::blocked), "blocked");
    EXPECT_EQ(to_string(verdict::reset_injected), "reset-injected");
    EXPECT_EQ(to_string(verdict::inconclusive), "inconclusive");
    EXPECT_EQ(to_string(basis::none), "none");
    EXPECT_EQ(to_string(basis::content), "content");
    EXPECT_EQ(to_string(basis::port), "port");
    for (verdict v : {verdict::none, verdict::throttled, verdict::blocked, verdict::reset_injected,
                      verdict::inconclusive}) {
        EXPECT_EQ(parse_verdict(to_string(v)), v);
    }
    for (basis b : {basis::none, basis::content, basis::port}) {
        EXPECT_EQ(parse_basis(to_string(b)), b);
    }
    EXPECT_FALSE(parse_verdict("reset_injected").has_value());
    EXPECT_FALSE(parse_basis("").has_value());
}

TEST(Verdict, NeutralPathIsNoneEverywhere) {
    const test_analysis a = run(sequential_test());
    ASSERT_EQ(a.verdicts.size(), 4u);
    EXPECT_EQ(a.verdicts[0].dir, direction::download);
    EXPECT_EQ(a.verdicts[0].port, test_port::bt);
    EXPECT_EQ(a.verdicts[3].dir, direction::upload);
    EXPECT_EQ(a.verdicts[3].port, test_port::neutral);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.outcome, verdict::none);
        EXPECT_EQ(v.why, basis::none);
        EXPECT_NEAR(v.bt_mbps, 20.0, 1e-9);
        EXPECT_NEAR(v.control_mbps, 20.0, 1e-9);
        EXPECT_GT(v.ks_p, 0.01);
        EXPECT_EQ(v.content.glasnost.decision, rule_decision::none);
        EXPECT_EQ(v.content.wehe.decision, rule_decision::none);
        EXPECT_EQ(v.content.paired.decision, rule_decision::not_applicable);
        EXPECT_FALSE(needs_confirmation(v));
    }
    EXPECT_TRUE(find(a, direction::download, test_port::bt).port_comparison.has_value());
    EXPECT_FALSE(find(a, direction::download, test_port::neutral).port_comparison.has_value());
    EXPECT_FALSE(needs_confirmation(a));
    expect_all_finite(a);
}

TEST(Verdict, ContentThrottlingOnBothPorts) {
    const test_analysis a = run(sequential_test([](direction dir, test_port, flow_kind kind) {
        return dir == direction::download && kind == flow_kind::bt ? 0.4 : 1.0;
    }));
    for (test_port port : {test_port::bt, test_port::neutral}) {
        const port_verdict& v = find(a, direction::download, port);
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::content);
        EXPECT_NEAR(v.bt_mbps, 8.0, 1e-9);
        EXPECT_NEAR(v.control_mbps, 20.0, 1e-9);
        EXPECT_NEAR(v.ratio, 0.4, 1e-9);
        EXPECT_LT(v.ks_p, 0.01);
        EXPECT_GT(v.area, 0.3);
        EXPECT_TRUE(needs_confirmation(v));
    }
    EXPECT_EQ(find(a, direction::download, test_port::bt).port_comparison->outcome, verdict::none);
    EXPECT_EQ(find(a, direction::upload, test_port::bt).outcome, verdict::none);
    EXPECT_EQ(find(a, direction::upload, test_port::neutral).outcome, verdict::none);
}

TEST(Verdict, PortThrottlingOnTheBtPort) {
    const test_analysis a = run(sequential_test([](direction dir, test_port port, flow_kind) {
        return dir == direction::upload && port == test_port::bt ? 0.3 : 1.0;
    }));
    const port_verdict& v = find(a, direction::upload, test_port::bt);
    EXPECT_EQ(v.content.outcome, verdict::none);
    ASSERT_TRUE(v.port_comparison.has_value());
    EXPECT_EQ(v.port_comparison->outcome, verdict::throttled);
    EXPECT_EQ(v.outcome, verdict::throttled);
    EXPECT_EQ(v.why, basis::port);
    EXPECT_EQ(find(a, direction::upload, test_port::neutral).outcome, verdict::none);
    EXPECT_EQ(find(a, direction::download, test_port::bt).outcome, verdict::none);
}

TEST(Verdict, ContentAndPortTogetherReportPortHereAndContentOnTheNeutralPort) {
    const test_analysis a = run(sequential_test([](direction, test_port port, flow_kind kind) {
        return (port == test_port::bt ? 0.5 : 1.0) * (kind == flow_kind::bt ? 0.5 : 1.0);
    }));
    const port_verdict& v = find(a, direction::download, test_port::bt);
    EXPECT_EQ(v.content.outcome, verdict::throttled);
    EXPECT_EQ(v.port_comparison->outcome, verdict::throttled);
    EXPECT_EQ(v.outcome, verdict::throttled);
    // The penalised port decides there; the content penalty shows on the neutral port.
    EXPECT_EQ(v.why, basis::port);
    const port_verdict& n = find(a, direction::download, test_port::neutral);
    EXPECT_EQ(n.outcome, verdict::throttled);
    EXPECT_EQ(n.why, basis::content);
}

TEST(Verdict, ContentBlocking) {
    std::vector<flow_record> flows = sequential_test();
    for (flow_record& f : flows) {
        if (f.kind == flow_kind::bt && f.dir == direction::download) {
            f.end = flow_end::connect_failed;
            f.mean_bps = 0.0;
            f.interval_bps.clear();
        }
    }
    const test_analysis a = run(flows);
    for (test_port port : {test_port::bt, test_port::neutral}) {
        const port_verdict& v = find(a, direction::download, port);
        EXPECT_EQ(v.outcome, verdict::blocked);
        EXPECT_EQ(v.why, basis::content);
        EXPECT_EQ(v.content.test_failed, 3u);
        EXPECT_EQ(v.content.reference_failed, 0u);
        EXPECT_TRUE(needs_confirmation(v));
    }
    EXPECT_EQ(find(a, direction::upload, test_port::bt).outcome, verdict::none);
    expect_all_finite(a);
}

TEST(Verdict, PortBlocking) {
    std::vector<flow_record> flows = sequential_test();
    for (flow_record& f : flows) {
        if (f.port == test_port::bt) {
            f.end = flow_end::stalled;
            f.mean_bps = 0.0;
            f.interval_bps.assign(100, 0.0);
        }
    }
    const test_analysis a = run(flows);
    const port_verdict& v = find(a, direction::download, test_port::bt);
    // BT and control both dead on the BT port: the content comparison cannot tell.
    EXPECT_EQ(v.content.outcome, verdict::inconclusive);
    EXPECT_EQ(v.port_comparison->outcome, verdict::blocked);
    EXPECT_EQ(v.outcome, verdict::blocked);
    EXPECT_EQ(v.why, basis::port);
    EXPECT_EQ(find(a, direction::download, test_port::neutral).outcome, verdict::none);
    expect_all_finite(a);
}

TEST(Verdict, SilentFlowsCountAsBlocked) {
    // Connected and "completed", but 0.5% of the best flow's rate: blocked, not throttled.
    const test_analysis a = run(sequential_test(
        [](direction, test_port, flow_kind kind) { return kind == flow_kind::bt ? 0.005 : 1.0; }));
    EXPECT_EQ(find(a, direction::download, test_port::bt).outcome, verdict::blocked);
    EXPECT_EQ(find(a, direction::download, test_port::bt).why, basis::content);
    // At 2% it is a (severe) throttle.
    const test_analysis b = run(sequential_test(
        [](direction, test_port, flow_kind kind) { return kind == flow_kind::bt ? 0.02 : 1.0; }));
    EXPECT_EQ(find(b, direction::download, test_port::bt).outcome, verdict::throttled);
}

TEST(Verdict, OneFailedFlowOfThreeIsInconclusive) {
    std::vector<flow_record> flows = sequential_test();
    for (flow_record& f : flows) {
        if (f.kind == flow_kind::bt && f.port == test_port::neutral &&
            f.dir == direction::download && f.repetition == 1) {
            f.end = flow_end::connect_failed;
            f.mean_bps = 0.0;
        }
    }
    const test_analysis a = run(flows);
    const port_verdict& v = find(a, direction::download, test_port::neutral);
    EXPECT_EQ(v.content.test_failed, 1u);
    EXPECT_EQ(v.outcome, verdict::inconclusive);
    EXPECT_EQ(v.why, basis::none);
    EXPECT_TRUE(needs_confirmation(v));
    // A failed reference flow voids the comparison too, even when all test flows are fine.
    std::vector<flow_record> g = sequential_test();
    g[1].end = flow_end::error;          // download, bt port, control, rep 0: still carried data
    g[3].end = flow_end::connect_failed; // download, neutral port, control, rep 0
    g[3].mean_bps = 0.0;
    const test_analysis b = run(g);
    EXPECT_EQ(find(b, direction::download, test_port::neutral).outcome, verdict::inconclusive);
    EXPECT_EQ(find(b, direction::download, test_port::bt).content.outcome, verdict::none);
}

TEST(Verdict, ForgedResetsByBasis) {
    // A reset received by the BT flow's receiver that the sender never sent: content.
    std::vector<flow_record> content = sequential_test();
    for (flow_record& f : content) {
        if (f.kind == flow_kind::bt && f.dir == direction::download && f.repetition == 2) {
            f.end = flow_end::reset_received;
            f.receiver_resets = reset_report{0, 1};
        }
    }
    const test_analysis a = run(content);
    for (test_port port : {test_port::bt, test_port::neutral}) {
        const port_verdict& v = find(a, direction::download, port);
        EXPECT_EQ(v.outcome, verdict::reset_injected);
        EXPECT_EQ(v.why, basis::content);
        EXPECT_TRUE(v.forged_reset);
        EXPECT_FALSE(needs_confirmation(v));
    }
    EXPECT_EQ(find(a, direction::upload, test_port::bt).outcome, verdict::none);

    // Resets on every flow of the BT port (sender side this time): port.
    std::vector<flow_record> port = sequential_test();
    for (flow_record& f : port) {
        if (f.port == test_port::bt && f.dir == direction::upload) {
            f.sender_resets = reset_report{0, 2};
        }
    }
    const test_analysis b = run(port);
    EXPECT_EQ(find(b, direction::upload, test_port::bt).outcome, verdict::reset_injected);
    EXPECT_EQ(find(b, direction::upload, test_port::bt).why, basis::port);
    EXPECT_EQ(find(b, direction::upload, test_port::neutral).outcome, verdict::none);

    // A forged reset on the neutral control flow is proof of injection but of no basis.
    std::vector<flow_record> unattributed = sequential_test();
    unattributed[3].receiver_resets = reset_report{0, 1}; // download, neutral, control
    const test_analysis c = run(unattributed);
    EXPECT_EQ(find(c, direction::download, test_port::neutral).outcome, verdict::reset_injected);
    EXPECT_EQ(find(c, direction::download, test_port::neutral).why, basis::none);
    // Its port comparison is unaffected: the BT port itself is clean.
    EXPECT_EQ(find(c, direction::download, test_port::bt).outcome, verdict::none);
}

TEST(Verdict, ResetsThatAnEndSentAreNotForged) {
    flow_record f = make_flow(direction::download, test_port::bt, flow_kind::bt, 0, 1e6);
    f.sender_resets = reset_report{1, 0};
    f.receiver_resets = reset_report{0, 1};
    EXPECT_FALSE(has_forged_reset(f));
    f.receiver_resets = reset_report{0, 2};
    EXPECT_TRUE(has_forged_reset(f));
    // Without the sender's report nothing can be proven.
    f.sender_resets.reset();
    EXPECT_FALSE(has_forged_reset(f));
}

TEST(Verdict, NoisySequentialRepetitionsAreInconclusive) {
    std::vector<flow_record> flows = sequential_test();
    for (flow_record& f : flows) {
        if (f.kind == flow_kind::control && f.dir == direction::download &&
            f.port == test_port::neutral && f.repetition > 0) {
            f.mean_bps *= 0.6; // cross traffic hit two of the three control repetitions
            for (double& s : f.interval_bps) {
                s *= 0.6;
            }
        }
    }
    const test_analysis a = run(flows);
    const port_verdict& v = find(a, direction::download, test_port::neutral);
    EXPECT_EQ(v.content.glasnost.decision, rule_decision::inconclusive);
    EXPECT_EQ(v.outcome, verdict::inconclusive);
    EXPECT_TRUE(needs_confirmation(v));
}

TEST(Verdict, OneRepetitionCannotBeConclusiveByGlasnost) {
    const test_analysis a = run(sequential_test(neutral, 1));
    ASSERT_EQ(a.verdicts.size(), 4u);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.content.glasnost.decision, rule_decision::inconclusive);
        EXPECT_EQ(v.outcome, verdict::inconclusive);
    }
    expect_all_finite(a);
}

// Concurrent schedule: per (direction, port, repetition) one group in which BT and control run
// together; `bt_share` is BT's per-interval rate relative to control's.
std::vector<flow_record> concurrent_test(double bt_share, std::uint32_t reps = 3) {
    std::vector<flow_record> flows;
    std::uint32_t group = 0;
    for (std::uint32_t rep = 0; rep < reps; ++rep) {
        for (direction dir : {direction::download, direction::upload}) {
            for (test_port port : {test_port::bt, test_port::neutral}) {
                const double control_bps = link_bps / (1.0 + bt_share);
                flow_record control = make_flow(dir, port, flow_kind::control, rep, control_bps);
                flow_record bt = control;
                bt.kind = flow_kind::bt;
                for (std::size_t k = 0; k < bt.interval_bps.size(); ++k) {
                    // Both flows see the same cross traffic: scale each interval alike.
                    const double burst = (k / 15) % 2 == 0 ? 1.0 : 0.3;
                    control.interval_bps[k] *= burst;
                    bt.interval_bps[k] = bt_share * control.interval_bps[k];
                }
                control.mean_bps *= 0.65;
                bt.mean_bps = bt_share * control.mean_bps;
                control.concurrent_group = group;
                bt.concurrent_group = group;
                ++group;
                flows.push_back(bt);
                flows.push_back(control);
            }
        }
    }
    return flows;
}

TEST(Verdict, ConcurrentPairsDecideUnderCommonCrossTraffic) {
    const test_analysis clean = run(concurrent_test(1.0));
    ASSERT_EQ(clean.verdicts.size(), 4u);
    for (const port_verdict& v : clean.verdicts) {
        EXPECT_EQ(v.content.paired.decision, rule_decision::none);
        EXPECT_EQ(v.outcome, verdict::none) << to_string(v.outcome);
        EXPECT_NEAR(v.ratio, 1.0, 1e-9);
    }
    const test_analysis throttled = run(concurrent_test(0.5));
    ASSERT_EQ(throttled.verdicts.size(), 4u);
    for (const port_verdict& v : throttled.verdicts) {
        EXPECT_EQ(v.content.paired.decision, rule_decision::differentiated);
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::content);
        EXPECT_NEAR(v.ratio, 0.5, 1e-9);
        EXPECT_LT(v.ratio, 0.8);
        EXPECT_EQ(v.content.paired.pairs, 3u);
    }
}

TEST(Verdict, MixedScheduleConflictIsInconclusive) {
    // Sequential flows show BT at 60% (a cap above the fair share), concurrent pairs show no
    // difference: the paired rule cannot see such a cap, so the test asks for a rerun.
    std::vector<flow_record> flows = sequential_test(
        [](direction, test_port, flow_kind kind) { return kind == flow_kind::bt ? 0.6 : 1.0; });
    const std::vector<flow_record> pairs = concurrent_test(1.0);
    flows.insert(flows.end(), pairs.begin(), pairs.end());
    const test_analysis a = run(flows);
    const port_verdict& v = find(a, direction::download, test_port::neutral);
    EXPECT_EQ(v.content.glasnost.decision, rule_decision::differentiated);
    EXPECT_EQ(v.content.wehe.decision, rule_decision::differentiated);
    EXPECT_EQ(v.content.paired.decision, rule_decision::none);
    EXPECT_EQ(v.outcome, verdict::inconclusive);
    // Pooled rules used only the sequential flows (BT max 12 Mbit/s, not the shared rates).
    EXPECT_NEAR(v.bt_mbps, 12.0, 1e-9);
    // The same mix on a neutral path is none.
    std::vector<flow_record> clean = sequential_test();
    clean.insert(clean.end(), pairs.begin(), pairs.end());
    const test_analysis mixed_clean = run(clean);
    ASSERT_EQ(mixed_clean.verdicts.size(), 4u);
    for (const port_verdict& w : mixed_clean.verdicts) {
        EXPECT_EQ(w.outcome, verdict::none);
    }
}

// Concurrent pairs on every port whose per-interval ratio alternates between r1 and r2, with a
// constant combined rate (so the busiest-half selection keeps every interval).
std::vector<flow_record> alternating_pairs(double r1, double r2) {
    std::vector<flow_record> flows;
    std::uint32_t group = 100;
    for (std::uint32_t rep = 0; rep < 3; ++rep) {
        for (test_port port : {test_port::bt, test_port::neutral}) {
            flow_record control = make_flow(direction::download, port, flow_kind::control, rep, 1);
            flow_record bt = control;
            bt.kind = flow_kind::bt;
            for (std::size_t k = 0; k < control.interval_bps.size(); ++k) {
                const double r = k % 2 == 0 ? r1 : r2;
                control.interval_bps[k] = link_bps / (1.0 + r);
                bt.interval_bps[k] = link_bps * r / (1.0 + r);
            }
            control.mean_bps = link_bps / 1.8;
            bt.mean_bps = link_bps * 0.8 / 1.8;
            control.concurrent_group = group;
            bt.concurrent_group = group;
            ++group;
            flows.push_back(bt);
            flows.push_back(control);
        }
    }
    return flows;
}

TEST(Verdict, PairsThatCannotDecideLeaveTheSequentialVerdict) {
    const auto sequential_60 = [](direction, test_port, flow_kind kind) {
        return kind == flow_kind::bt ? 0.6 : 1.0;
    };
    for (const auto& [r1, r2] : {std::pair{0.5, 1.0}, std::pair{0.7, 1.3}}) {
        SCOPED_TRACE(r1);
        std::vector<flow_record> flows = sequential_test(sequential_60);
        const std::vector<flow_record> weak = alternating_pairs(r1, r2);
        flows.insert(flows.end(), weak.begin(), weak.end());
        const port_verdict v = find(run(flows), direction::download, test_port::bt);
        EXPECT_EQ(v.content.paired.decision, rule_decision::inconclusive);
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::content);

        std::vector<flow_record> clean = sequential_test();
        clean.insert(clean.end(), weak.begin(), weak.end());
        const test_analysis weak_clean = run(clean);
        ASSERT_EQ(weak_clean.verdicts.size(), 4u);
        for (const port_verdict& w : weak_clean.verdicts)
            EXPECT_EQ(w.outcome, verdict::none);
    }
}

// Sequential flows on every (direction, port) whose intervals are set by `shape(kind, rep, k)`
// as a fraction of the link (100 intervals per flow, 2 repetitions as in the default test).
template <class Shape>
std::vector<flow_record> shaped_test(Shape shape) {
    std::vector<flow_record> flows;
    for (std::uint32_t rep = 0; rep < 2; ++rep) {
        for (direction dir : {direction::download, direction::upload}) {
            for (test_port port : {test_port::bt, test_port::neutral}) {
                for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
                    flow_record f = make_flow(dir, port, kind, rep, 1.0);
                    double sum = 0.0;
                    for (std::size_t k = 0; k < f.interval_bps.size(); ++k) {
                        f.interval_bps[k] = link_bps * shape(kind, rep, k);
                        sum += f.interval_bps[k];
                    }
                    f.mean_bps = sum / static_cast<double>(f.interval_bps.size());
                    flows.push_back(std::move(f));
                }
            }
        }
    }
    return flows;
}

// On/off cross traffic: a flow gets the whole link in the gaps and 30% during bursts; how much
// of each flow the bursts cover differs per flow (BT unlucky: 70% of its intervals).
double on_off(flow_kind kind, std::uint32_t rep, std::size_t k) {
    const std::size_t burst_share = kind == flow_kind::bt ? 70 : (rep == 0 ? 10 : 40);
    return (k * 37) % 100 < burst_share ? 0.3 : 1.0;
}

TEST(Verdict, CrossTrafficScattersTheMeansButNotThePeaks) {
    const test_analysis a = run(shaped_test(on_off));
    ASSERT_EQ(a.verdicts.size(), 4u);
    for (const port_verdict& v : a.verdicts) {
        // Means: BT 0.51 of the link against control's best 0.93: Glasnost alone would accuse.
        EXPECT_EQ(v.content.glasnost.decision, rule_decision::differentiated);
        EXPECT_EQ(v.content.peak.decision, rule_decision::none);
        EXPECT_NEAR(v.content.peak.test_max_bps, link_bps, 1e-6);
        // So does Wehe on the pooled samples (70% of BT's intervals in bursts). The peaks
        // clear BT, two whole-flow rules accuse: neither throttled nor none, but a rerun.
        EXPECT_EQ(v.content.wehe.decision, rule_decision::differentiated);
        EXPECT_EQ(v.outcome, verdict::inconclusive);
        EXPECT_TRUE(needs_confirmation(v));
    }
}

TEST(Verdict, ACapHoldsInEveryIntervalAndIsThrottled) {
    // BT capped at 40% of the link throughout; control meets the cross traffic as above.
    const auto capped = [](flow_kind kind, std::uint32_t rep, std::size_t k) {
        return kind == flow_kind::bt ? std::min(0.4, on_off(kind, rep, k)) : on_off(kind, rep, k);
    };
    const test_analysis a = run(shaped_test(capped));
    ASSERT_EQ(a.verdicts.size(), 4u);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.content.peak.decision, rule_decision::differentiated);
        EXPECT_NEAR(v.content.peak.relative_difference, 0.6, 1e-9);
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::content);
    }
}

// Every verdict's content comparison: the three pooled rules' decisions and the outcome.
void expect_content_rules(const test_analysis& a, rule_decision peak, rule_decision glasnost,
                          rule_decision wehe, verdict outcome) {
    ASSERT_EQ(a.verdicts.size(), 4u);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.content.peak.decision, peak);
        EXPECT_EQ(v.content.glasnost.decision, glasnost);
        EXPECT_EQ(v.content.wehe.decision, wehe);
        EXPECT_EQ(v.outcome, outcome);
    }
}

TEST(Verdict, PeaksAloneDoNotAccuse) {
    // BT steady at 75% of the link; control at 70% with one interval in five at the full link:
    // the peaks differ by 25%, the means (0.75 vs 0.76) and distributions hardly at all.
    const auto spiky = [](flow_kind kind, std::uint32_t, std::size_t k) {
        return kind == flow_kind::bt ? 0.75 : (k % 5 == 0 ? 1.0 : 0.7);
    };
    expect_content_rules(run(shaped_test(spiky)), rule_decision::differentiated,
                         rule_decision::none, rule_decision::none, verdict::inconclusive);
}

TEST(Verdict, ADelayedThrottleIsFoundByTheLateRuleWithItsOnset) {
    // BT at the full link for its first 15 intervals (a throttle that starts after a byte
    // count) and at 30% after; control at the full link. The whole-flow peaks agree; the late
    // peaks, the means and the distributions do not.
    const auto late = [](flow_kind kind, std::uint32_t, std::size_t k) {
        return kind == flow_kind::bt && k >= 15 ? 0.3 : 1.0;
    };
    const test_analysis a = run(shaped_test(late));
    expect_content_rules(a, rule_decision::none, rule_decision::differentiated,
                         rule_decision::differentiated, verdict::throttled);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.why, basis::content);
        EXPECT_EQ(v.content.late.decision, rule_decision::differentiated);
        EXPECT_NEAR(v.content.late.relative_difference, 0.7, 1e-9);
        EXPECT_EQ(v.content.early.decision, rule_decision::none);
        EXPECT_TRUE(v.content.cut_in_every_test_flow);
        ASSERT_TRUE(v.onset.has_value());
        // 15 intervals of 50 ms at the full 20 Mbit/s link: 0.75 s and 1.875 MB.
        EXPECT_NEAR(v.onset->seconds, 0.75, 1e-9);
        EXPECT_NEAR(v.onset->bytes, 15 * 0.05 * link_bps / 8, 1.0);
        EXPECT_EQ(v.onset->flows, 2u);
        EXPECT_TRUE(needs_confirmation(v));
    }
}

TEST(Verdict, APlainThrottleHasNoOnset) {
    const auto capped = [](flow_kind kind, std::uint32_t, std::size_t) {
        return kind == flow_kind::bt ? 0.3 : 1.0;
    };
    const test_analysis a = run(shaped_test(capped));
    for (const port_verdict& v : a.verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_FALSE(v.content.cut_in_every_test_flow);
        EXPECT_FALSE(v.onset.has_value());
    }
}

TEST(Verdict, ALateDropInOneTestFlowOnlyIsNotADelayedThrottle) {
    // Repetition 0 of BT drops to 30% after 15 intervals (cross traffic that covered its end),
    // repetition 1 does not: the late peaks differ by less than the noise allows, and the cut
    // is not in every test flow. Peaks agree; so the late rule cannot accuse.
    const auto one = [](flow_kind kind, std::uint32_t rep, std::size_t k) {
        return kind == flow_kind::bt && rep == 0 && k >= 15 ? 0.3 : 1.0;
    };
    const test_analysis a = run(shaped_test(one));
    for (const port_verdict& v : a.verdicts) {
        EXPECT_FALSE(v.content.cut_in_every_test_flow);
        EXPECT_NE(v.outcome, verdict::throttled);
        EXPECT_FALSE(v.onset.has_value());
    }
}

TEST(Verdict, AnOnsetSurvivesTheMergeOfAConfirmedThrottleOnly) {
    port_verdict first;
    first.outcome = verdict::throttled;
    first.why = basis::content;
    first.onset = throttle_onset{1.0, 5e6, 2};
    port_verdict rerun = first;
    rerun.onset.reset();
    const port_verdict kept = merge_rerun(first, rerun);
    EXPECT_EQ(kept.outcome, verdict::throttled);
    ASSERT_TRUE(kept.onset.has_value());
    EXPECT_EQ(kept.onset->bytes, 5e6);
    rerun.outcome = verdict::none;
    rerun.why = basis::none;
    const port_verdict cleared = merge_rerun(first, rerun);
    EXPECT_EQ(cleared.outcome, verdict::inconclusive);
    EXPECT_FALSE(cleared.onset.has_value());
}

// A policer passes a burst at full rate, then drops: peaks at the link rate, a low mean, and
// BT flows retransmitting a tenth of their segments while control retransmits nothing.
std::vector<flow_record> policed_test(double bt_loss, double control_loss) {
    const auto policed = [](flow_kind kind, std::uint32_t, std::size_t k) {
        return kind == flow_kind::bt ? (k % 5 == 0 ? 1.0 : 0.1) : 1.0;
    };
    std::vector<flow_record> flows = shaped_test(policed);
    for (flow_record& f : flows) {
        f.retransmit_fraction = f.kind == flow_kind::bt ? bt_loss : control_loss;
    }
    return flows;
}

TEST(Verdict, APolicersRetransmissionsMakeItThrottledWhenThePeaksAgree) {
    const test_analysis a = run(policed_test(0.1, 0.0));
    ASSERT_EQ(a.verdicts.size(), 4u);
    for (const port_verdict& v : a.verdicts) {
        EXPECT_NE(v.content.peak.decision, rule_decision::differentiated);
        EXPECT_EQ(v.content.glasnost.decision, rule_decision::differentiated);
        ASSERT_TRUE(v.content.policing.has_value());
        EXPECT_DOUBLE_EQ(v.content.policing->test_min, 0.1);
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::content);
        ASSERT_TRUE(v.policing.has_value());
    }
}

TEST(Verdict, RetransmissionsAloneOrSharedWithControlAreNoPolicing) {
    // Random loss hits both kinds alike (3% each); a few BT retransmissions (2%) over none are
    // below policing_loss_min: neither is the mark, and the spiky BT flows stay undecided.
    for (auto [bt, control] :
         {std::pair{0.03, 0.03}, std::pair{0.02, 0.0}, std::pair{0.09, 0.04}}) {
        const test_analysis a = run(policed_test(bt, control));
        for (const port_verdict& v : a.verdicts) {
            EXPECT_FALSE(v.content.policing.has_value()) << bt << " " << control;
            EXPECT_NE(v.outcome, verdict::throttled) << bt << " " << control;
        }
    }
    // Flows with no retransmit count (older reports): no signature either.
    std::vector<flow_record> unknown = policed_test(0.1, 0.0);
    unknown.front().retransmit_fraction.reset();
    for (const port_verdict& v : run(unknown).verdicts) {
        if (v.dir == unknown.front().dir && v.port == unknown.front().port) {
            EXPECT_FALSE(v.content.policing.has_value());
        }
    }
}

TEST(Verdict, DegenerateInputs) {
    const auto empty = analyse(std::vector<flow_record>{});
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->verdicts.empty());

    // Only BT flows on one port: nothing to compare against.
    std::vector<flow_record> lonely = {
        make_flow(direction::download, test_port::bt, flow_kind::bt, 0, 1e6)};
    const test_analysis a = run(lonely);
    ASSERT_EQ(a.verdicts.size(), 1u);
    EXPECT_EQ(a.verdicts[0].outcome, verdict::inconclusive);
    expect_all_finite(a);

    // Zero throughput everywhere: the path carried nothing at all.
    std::vector<flow_record> zeros =
        sequential_test([](direction, test_port, flow_kind) { return 0.0; });
    const test_analysis z = run(zeros);
    ASSERT_EQ(z.verdicts.size(), 4u);
    for (const port_verdict& v : z.verdicts) {
        EXPECT_EQ(v.outcome, verdict::inconclusive);
        EXPECT_EQ(v.bt_mbps, 0.0);
    }
    expect_all_finite(z);

    // Flows without interval samples: Glasnost still judges the means; Wehe has no data.
    std::vector<flow_record> no_samples = sequential_test();
    for (flow_record& f : no_samples) {
        f.interval_bps.clear();
    }
    const test_analysis n = run(no_samples);
    ASSERT_EQ(n.verdicts.size(), 4u);
    for (const port_verdict& v : n.verdicts) {
        EXPECT_EQ(v.content.wehe.decision, rule_decision::not_applicable);
        EXPECT_EQ(v.outcome, verdict::inconclusive);
    }
    expect_all_finite(n);
}

TEST(Verdict, RejectsMalformedInput) {
    std::vector<flow_record> flows = sequential_test();
    flows[0].interval_bps[3] = std::numeric_limits<double>::quiet_NaN();
    auto r = analyse(flows);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);

    flows = sequential_test();
    flows[1].mean_bps = std::numeric_limits<double>::infinity();
    EXPECT_EQ(analyse(flows).err().code, errc::invalid_argument);

    flows = sequential_test();
    flows[2].mean_bps = -1.0;
    EXPECT_EQ(analyse(flows).err().code, errc::invalid_argument);

    // Outside what a flow can have: sums and ratios of such rates leave the double's range.
    flows = sequential_test();
    flows[0].interval_bps[0] = 1.7e308;
    EXPECT_EQ(analyse(flows).err().code, errc::invalid_argument);
    flows = sequential_test();
    flows[0].interval_bps[0] = 5e-324;
    EXPECT_EQ(analyse(flows).err().code, errc::invalid_argument);
    flows = sequential_test();
    flows[0].interval_s = 1e300;
    EXPECT_EQ(analyse(flows).err().code, errc::invalid_argument);
    // Its ends are accepted: nothing, one byte a day, a petabit.
    flows = sequential_test();
    flows[0].interval_bps[0] = 0.0;
    flows[0].interval_bps[1] = min_positive_rate_bps;
    flows[0].interval_bps[2] = max_input_rate_bps;
    EXPECT_TRUE(analyse(flows).ok());

    flows = sequential_test();
    flows[0].interval_bps.assign(max_samples_per_flow + 1, 1.0);
    EXPECT_EQ(analyse(flows).err().code, errc::limit_exceeded);

    std::vector<flow_record> many(
        max_flows + 1, make_flow(direction::download, test_port::bt, flow_kind::bt, 0, 1));
    EXPECT_EQ(analyse(many).err().code, errc::limit_exceeded);
}

port_verdict verdict_of(verdict v, basis b) {
    port_verdict p;
    p.outcome = v;
    p.why = b;
    return p;
}

TEST(Rerun, NeedsConfirmation) {
    EXPECT_FALSE(needs_confirmation(verdict_of(verdict::none, basis::none)));
    EXPECT_TRUE(needs_confirmation(verdict_of(verdict::throttled, basis::content)));
    EXPECT_TRUE(needs_confirmation(verdict_of(verdict::blocked, basis::port)));
    EXPECT_TRUE(needs_confirmation(verdict_of(verdict::inconclusive, basis::none)));
    EXPECT_FALSE(needs_confirmation(verdict_of(verdict::reset_injected, basis::content)));
    port_verdict merged = merge_rerun(verdict_of(verdict::throttled, basis::content),
                                      verdict_of(verdict::throttled, basis::content));
    EXPECT_EQ(merged.runs, 2u);
    EXPECT_FALSE(needs_confirmation(merged)); // one rerun only
}

TEST(Rerun, MergeTable) {
    struct row {
        verdict first;
        basis first_basis;
        verdict rerun;
        basis rerun_basis;
        verdict expected;
        basis expected_basis;
        bool confirmed;
    };
    const row rows[] = {
        {verdict::throttled, basis::content, verdict::throttled, basis::content, verdict::throttled,
         basis::content, true},
        {verdict::blocked, basis::port, verdict::blocked, basis::port, verdict::blocked,
         basis::port, true},
        {verdict::blocked, basis::content, verdict::throttled, basis::content, verdict::throttled,
         basis::content, true},
        {verdict::throttled, basis::content, verdict::throttled, basis::port, verdict::inconclusive,
         basis::none, false},
        {verdict::throttled, basis::content, verdict::none, basis::none, verdict::inconclusive,
         basis::none, false},
        {verdict::inconclusive, basis::none, verdict::none, basis::none, verdict::none, basis::none,
         false},
        {verdict::inconclusive, basis::none, verdict::throttled, basis::port, verdict::inconclusive,
         basis::none, false},
        {verdict::inconclusive, basis::none, verdict::inconclusive, basis::none,
         verdict::inconclusive, basis::none, true},
        {verdict::throttled, basis::content, verdict::reset_injected, basis::port,
         verdict::reset_injected, basis::port, false},
        {verdict::reset_injected, basis::content, verdict::none, basis::none,
         verdict::reset_injected, basis::content, false},
    };
    for (const row& r : rows) {
        SCOPED_TRACE(std::string(to_string(r.first)) + "/" + std::string(to_string(r.rerun)));
        const port_verdict m =
            merge_rerun(verdict_of(r.first, r.first_basis), verdict_of(r.rerun, r.rerun_basis));
        EXPECT_EQ(m.outcome, r.expected);
        EXPECT_EQ(m.why, r.expected_basis);
        EXPECT_EQ(m.confirmed, r.confirmed);
    }
}

TEST(Rerun, SameComparisonPositiveInBothRunsIsConfirmed) {
    // First run: the port comparison decided (content was noise on a trickle). Rerun: the
    // noisy content comparison ranked first, but its port comparison is positive too.
    port_verdict first = verdict_of(verdict::throttled, basis::port);
    first.port_comparison = comparison{};
    first.port_comparison->outcome = verdict::throttled;
    port_verdict rerun = verdict_of(verdict::throttled, basis::content);
    rerun.content.outcome = verdict::throttled;
    rerun.port_comparison = comparison{};
    rerun.port_comparison->outcome = verdict::throttled;
    const port_verdict m = merge_rerun(first, rerun);
    EXPECT_EQ(m.outcome, verdict::throttled);
    EXPECT_EQ(m.why, basis::port);
    EXPECT_TRUE(m.confirmed);
    // Without the rerun's port comparison agreeing, the two runs do not confirm each other.
    rerun.port_comparison->outcome = verdict::none;
    const port_verdict n = merge_rerun(first, rerun);
    EXPECT_EQ(n.outcome, verdict::inconclusive);
    EXPECT_FALSE(n.confirmed);
}

TEST(Rerun, MergeWholeTests) {
    const test_analysis first = run(sequential_test([](direction dir, test_port, flow_kind kind) {
        return dir == direction::download && kind == flow_kind::bt ? 0.4 : 1.0;
    }));
    const test_analysis confirm = first;
    const test_analysis cleared = run(sequential_test());
    ASSERT_TRUE(needs_confirmation(first));
    const test_analysis both = merge_rerun(first, confirm);
    ASSERT_EQ(both.verdicts.size(), 4u);
    EXPECT_EQ(find(both, direction::download, test_port::bt).outcome, verdict::throttled);
    EXPECT_TRUE(find(both, direction::download, test_port::bt).confirmed);
    EXPECT_FALSE(needs_confirmation(both));
    const test_analysis disagree = merge_rerun(first, cleared);
    EXPECT_EQ(find(disagree, direction::download, test_port::bt).outcome, verdict::inconclusive);
    EXPECT_EQ(find(disagree, direction::upload, test_port::bt).outcome, verdict::none);
    // Entries present in only one run are kept.
    test_analysis partial = cleared;
    partial.verdicts.resize(1);
    EXPECT_EQ(merge_rerun(partial, first).verdicts.size(), 4u);
}

// ---- Endpoint (a classifier that remembers endpoints) -----------------------------------

// A test as the schedule runs it: repetition 0's control flows are the clean references (they
// ran before any BT flow); `after_bt` multiplies every later flow's rate, control or BT, and
// `bt` the BT flows' on top (a plain content throttle); `bt_port` every flow on the BT port (a
// port throttle), references included.
std::vector<flow_record> referenced_test(double after_bt, double bt = 1.0, double bt_port = 1.0) {
    std::vector<flow_record> flows;
    for (std::uint32_t rep = 0; rep < 2; ++rep) {
        for (direction dir : {direction::download, direction::upload}) {
            for (test_port port : {test_port::bt, test_port::neutral}) {
                for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
                    const bool reference = rep == 0 && kind == flow_kind::control;
                    double rate = link_bps * (1.0 - 0.02 * rep);
                    if (!reference)
                        rate *= after_bt;
                    if (kind == flow_kind::bt)
                        rate *= bt;
                    if (port == test_port::bt)
                        rate *= bt_port;
                    flows.push_back(make_flow(dir, port, kind, rep, rate));
                    flows.back().clean_reference = reference;
                }
            }
        }
    }
    return flows;
}

TEST(Verdict, LaterFlowsPenalisedAgainstCleanReferencesIsAnEndpointThrottle) {
    const auto a = run(referenced_test(0.1));
    for (const port_verdict& v : a.verdicts) {
        SCOPED_TRACE(std::string(to_string(v.dir)) + " " + std::string(to_string(v.port)));
        // BT and the later controls measure alike: content alone says nothing.
        EXPECT_NE(v.content.outcome, verdict::throttled);
        ASSERT_TRUE(v.endpoint_comparison.has_value());
        EXPECT_EQ(v.endpoint_comparison->outcome, verdict::throttled);
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::endpoint);
    }
    EXPECT_EQ(parse_basis("endpoint"), basis::endpoint);
    EXPECT_EQ(to_string(basis::endpoint), "endpoint");
}

TEST(Verdict, CleanReferencesLeaveOtherPoliciesTheirBasis) {
    // Neutral: the references measure like every other control flow.
    for (const port_verdict& v : run(referenced_test(1.0)).verdicts) {
        EXPECT_EQ(v.outcome, verdict::none);
        ASSERT_TRUE(v.endpoint_comparison.has_value());
        EXPECT_EQ(v.endpoint_comparison->outcome, verdict::none);
    }
    // A content throttle: the later controls run at the references' rate.
    for (const port_verdict& v : run(referenced_test(1.0, 0.1)).verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::content);
    }
    // A port throttle holds the BT port's reference too: port, never endpoint.
    const auto port = run(referenced_test(1.0, 1.0, 0.1));
    for (direction dir : {direction::download, direction::upload}) {
        EXPECT_EQ(find(port, dir, test_port::bt).why, basis::port);
        EXPECT_NE(find(port, dir, test_port::neutral).why, basis::endpoint);
    }
}

TEST(Verdict, ARerunIsJudgedAgainstTheFirstRunsCleanReferences) {
    const auto first = referenced_test(0.1);
    std::vector<flow_record> references;
    for (const flow_record& f : first)
        if (f.clean_reference)
            references.push_back(f);
    // The rerun has no clean flow of its own: everything ran after BitTorrent was seen.
    auto rerun = referenced_test(0.1);
    for (flow_record& f : rerun) {
        f.clean_reference = false;
        if (f.kind == flow_kind::control && f.repetition == 0) {
            f.mean_bps *= 0.1;
            f.interval_bps = samples_around(f.mean_bps, 3);
        }
    }
    auto alone = analyse(rerun);
    ASSERT_TRUE(alone.ok());
    for (const port_verdict& v : alone->verdicts)
        EXPECT_FALSE(v.endpoint_comparison.has_value()); // nothing to compare with
    auto judged = analyse(rerun, references);
    ASSERT_TRUE(judged.ok());
    for (const port_verdict& v : judged->verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::endpoint);
    }
    const auto merged = merge_rerun(run(first), *judged);
    for (const port_verdict& v : merged.verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled);
        EXPECT_EQ(v.why, basis::endpoint);
        EXPECT_TRUE(v.confirmed);
    }
}

} // namespace
} // namespace glasnode::proto
