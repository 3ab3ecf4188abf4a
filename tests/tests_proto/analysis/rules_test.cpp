#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tests_proto/analysis/rules.hpp"

namespace glasnode::proto {
namespace {

const analysis_settings defaults{};

// ---- Glasnost --------------------------------------------------------------------------

TEST(GlasnostRule, ClearThrottleIsDifferentiated) {
    // BT max 5, control max 10: difference 0.5; noise 0.02 on both kinds.
    const auto g = glasnost_rule(std::vector<double>{5e6, 4.8e6, 4.9e6},
                                 std::vector<double>{10e6, 9.5e6, 9.8e6}, defaults);
    EXPECT_EQ(g.decision, rule_decision::differentiated);
    EXPECT_DOUBLE_EQ(g.test_max_bps, 5e6);
    EXPECT_DOUBLE_EQ(g.reference_max_bps, 10e6);
    EXPECT_DOUBLE_EQ(g.relative_difference, 0.5);
    EXPECT_NEAR(g.test_noise, 0.02, 1e-12);
    EXPECT_NEAR(g.reference_noise, 0.02, 1e-12);
}

TEST(GlasnostRule, NoiseExactlyAtThresholdIsValid) {
    // Control median 8 of max 10: noise exactly 0.2, still valid (<= 0.2).
    const auto g = glasnost_rule(std::vector<double>{10e6, 10e6, 10e6},
                                 std::vector<double>{10e6, 8e6, 7e6}, defaults);
    EXPECT_DOUBLE_EQ(g.reference_noise, 0.2);
    EXPECT_EQ(g.decision, rule_decision::none);
}

TEST(GlasnostRule, NoiseAboveThresholdIsInconclusive) {
    const auto g = glasnost_rule(std::vector<double>{10e6, 10e6, 10e6},
                                 std::vector<double>{10e6, 7.9e6, 7e6}, defaults);
    EXPECT_NEAR(g.reference_noise, 0.21, 1e-12);
    EXPECT_EQ(g.decision, rule_decision::inconclusive);
    // Noise on the BT side voids the comparison just the same.
    const auto h = glasnost_rule(std::vector<double>{5e6, 3e6, 3e6},
                                 std::vector<double>{10e6, 10e6, 10e6}, defaults);
    EXPECT_EQ(h.decision, rule_decision::inconclusive);
}

TEST(GlasnostRule, DifferenceExactlyAtThresholdIsNotDifferentiation) {
    const std::vector<double> control = {10e6, 10e6, 10e6};
    const auto at = glasnost_rule(std::vector<double>{8e6, 8e6, 8e6}, control, defaults);
    EXPECT_DOUBLE_EQ(at.relative_difference, 0.2);
    EXPECT_EQ(at.decision, rule_decision::none);
    const auto below =
        glasnost_rule(std::vector<double>{7.99e6, 7.99e6, 7.99e6}, control, defaults);
    EXPECT_EQ(below.decision, rule_decision::differentiated);
}

TEST(GlasnostRule, OneSided) {
    // BT twice as fast as control is not throttling.
    const auto g = glasnost_rule(std::vector<double>{20e6, 20e6, 20e6},
                                 std::vector<double>{10e6, 10e6, 10e6}, defaults);
    EXPECT_DOUBLE_EQ(g.relative_difference, -1.0);
    EXPECT_EQ(g.decision, rule_decision::none);
}

TEST(GlasnostRule, RepetitionCounts) {
    // One repetition: noise cannot be estimated.
    const auto one = glasnost_rule(std::vector<double>{1e6}, std::vector<double>{10e6}, defaults);
    EXPECT_EQ(one.decision, rule_decision::inconclusive);
    EXPECT_DOUBLE_EQ(one.relative_difference, 0.9);
    // Two: the median is the mean of the two, noise = (max - min) / (2 max).
    const auto two_ok =
        glasnost_rule(std::vector<double>{10e6, 6e6}, std::vector<double>{10e6, 10e6}, defaults);
    EXPECT_DOUBLE_EQ(two_ok.test_noise, 0.2);
    EXPECT_EQ(two_ok.decision, rule_decision::none);
    const auto two_noisy =
        glasnost_rule(std::vector<double>{10e6, 5.9e6}, std::vector<double>{10e6, 10e6}, defaults);
    EXPECT_EQ(two_noisy.decision, rule_decision::inconclusive);
}

TEST(GlasnostRule, DegenerateInputs) {
    const auto empty = glasnost_rule(std::vector<double>{}, std::vector<double>{1e6}, defaults);
    EXPECT_EQ(empty.decision, rule_decision::not_applicable);
    const auto zeros =
        glasnost_rule(std::vector<double>{0, 0, 0}, std::vector<double>{0, 0, 0}, defaults);
    EXPECT_EQ(zeros.decision, rule_decision::inconclusive);
    EXPECT_EQ(zeros.relative_difference, 0.0);
    EXPECT_EQ(zeros.test_noise, 0.0);
    // BT carried nothing, control did: a 100% difference (the blocked check reports it).
    const auto silent =
        glasnost_rule(std::vector<double>{0, 0, 0}, std::vector<double>{5e6, 5e6, 5e6}, defaults);
    EXPECT_EQ(silent.decision, rule_decision::differentiated);
    EXPECT_DOUBLE_EQ(silent.relative_difference, 1.0);
}

// ---- Wehe ------------------------------------------------------------------------------

std::vector<double> ramp(int count, double start, double step) {
    std::vector<double> out;
    for (int i = 0; i < count; ++i) {
        out.push_back(start + step * i);
    }
    return out;
}

TEST(WeheRule, ThrottledSlowFlowIsDifferentiated) {
    // Control 0.1..10 Mbit/s, BT the same at 40%: the CDFs do not cross, so the area equals the
    // mean difference 5.05 - 2.02 = 3.03 Mbit/s, over min(max) = 4 Mbit/s: 0.7575.
    const std::vector<double> control = ramp(100, 0.1e6, 0.1e6);
    std::vector<double> bt;
    for (double c : control) {
        bt.push_back(0.4 * c);
    }
    const auto w = wehe_rule(bt, control, defaults);
    EXPECT_NEAR(w.area, 3.03e6 / 4e6, 1e-9);
    EXPECT_NEAR(w.signed_area, w.area, 1e-9);
    EXPECT_DOUBLE_EQ(w.area_threshold, 0.5);
    EXPECT_LT(w.ks_p, 1e-10);
    EXPECT_TRUE(w.ks_exact);
    EXPECT_EQ(w.decision, rule_decision::differentiated);
    // The same distributions the other way round: BT faster is not throttling.
    const auto reverse = wehe_rule(control, bt, defaults);
    EXPECT_NEAR(reverse.area, 3.03e6 / 4e6, 1e-9);
    EXPECT_LT(reverse.signed_area, 0.0);
    EXPECT_EQ(reverse.decision, rule_decision::none);
}

TEST(WeheRule, AreaThresholdDependsOnThroughput) {
    // Control 1.00..1.99 Mbit/s, BT shifted down by 0.5 Mbit/s: area 0.5 / 1.49 = 0.3356,
    // KS D = 0.5 (p tiny). Below 10 Mbit/s the threshold is 0.5: not differentiated.
    const std::vector<double> control = ramp(100, 1e6, 0.01e6);
    const std::vector<double> bt = ramp(100, 0.5e6, 0.01e6);
    const auto slow = wehe_rule(bt, control, defaults);
    EXPECT_NEAR(slow.area, 0.5 / 1.49, 1e-9);
    EXPECT_LT(slow.ks_p, 1e-6);
    EXPECT_DOUBLE_EQ(slow.area_threshold, 0.5);
    EXPECT_EQ(slow.decision, rule_decision::none);
    // Twenty times faster (20..39.8 Mbit/s): same relative area, threshold 0.3: differentiated.
    std::vector<double> fast_control;
    std::vector<double> fast_bt;
    for (std::size_t i = 0; i < control.size(); ++i) {
        fast_control.push_back(20 * control[i]);
        fast_bt.push_back(20 * bt[i]);
    }
    const auto fast = wehe_rule(fast_bt, fast_control, defaults);
    EXPECT_NEAR(fast.area, 0.5 / 1.49, 1e-9);
    EXPECT_DOUBLE_EQ(fast.area_threshold, 0.3);
    EXPECT_EQ(fast.decision, rule_decision::differentiated);
}

TEST(WeheRule, AreaExactlyAtThresholdCounts) {
    // Constant 2 vs constant 3: area 1 / min(2, 3) = 0.5 exactly; D = 1, p tiny.
    const auto at =
        wehe_rule(std::vector<double>(100, 2.0), std::vector<double>(100, 3.0), defaults);
    EXPECT_DOUBLE_EQ(at.area, 0.5);
    EXPECT_EQ(at.decision, rule_decision::differentiated);
    const auto below =
        wehe_rule(std::vector<double>(100, 2.0), std::vector<double>(100, 2.99), defaults);
    EXPECT_LT(below.area, 0.5);
    EXPECT_EQ(below.decision, rule_decision::none);
}

TEST(WeheRule, LargeAreaWithoutSignificanceIsNone) {
    // One sample each: area 1, but KS cannot reject anything with n = 1.
    const auto w = wehe_rule(std::vector<double>{1.0}, std::vector<double>{2.0}, defaults);
    EXPECT_DOUBLE_EQ(w.area, 1.0);
    EXPECT_DOUBLE_EQ(w.ks_p, 1.0);
    EXPECT_EQ(w.decision, rule_decision::none);
}

TEST(WeheRule, DegenerateInputs) {
    const auto empty = wehe_rule(std::vector<double>{}, std::vector<double>{1.0}, defaults);
    EXPECT_EQ(empty.decision, rule_decision::not_applicable);
    // A flow of zeros against a live one: normalised by the live range, finite.
    const auto zero =
        wehe_rule(std::vector<double>(100, 0.0), std::vector<double>(100, 4.0), defaults);
    EXPECT_TRUE(std::isfinite(zero.area));
    EXPECT_DOUBLE_EQ(zero.area, 1.0);
    EXPECT_EQ(zero.decision, rule_decision::differentiated);
    // Rates at the ends of the double's range (the fuzzer's, never a flow's; analyse() refuses
    // them first): no decision, and every figure stays finite.
    const auto tiny_against_huge =
        wehe_rule(std::vector<double>(100, 5e-324), std::vector<double>(100, 1e300), defaults);
    EXPECT_EQ(tiny_against_huge.decision, rule_decision::not_applicable);
    EXPECT_EQ(tiny_against_huge.area, 0.0);
    EXPECT_EQ(tiny_against_huge.signed_area, 0.0);
    std::vector<double> huge(100, 1.7e308), spread(100, 1e-300);
    for (std::size_t i = 0; i < spread.size(); i += 2)
        spread[i] = 1.7e308;
    const auto overflowing = wehe_rule(spread, huge, defaults);
    EXPECT_TRUE(std::isfinite(overflowing.area));
    EXPECT_TRUE(std::isfinite(overflowing.signed_area));
    const auto both_zero =
        wehe_rule(std::vector<double>(100, 0.0), std::vector<double>(100, 0.0), defaults);
    EXPECT_EQ(both_zero.area, 0.0);
    EXPECT_EQ(both_zero.ks_p, 1.0);
    EXPECT_EQ(both_zero.decision, rule_decision::none);
}

// ---- Paired ----------------------------------------------------------------------------

struct pair_data {
    std::vector<double> test;
    std::vector<double> reference;
};

// Reference rates vary (as under cross traffic); test = ratio[k] * reference. Powers of two
// keep test / reference exactly equal to ratio[k], so equal ratios give equal log ratios.
pair_data with_ratios(const std::vector<double>& ratios) {
    pair_data p;
    for (std::size_t k = 0; k < ratios.size(); ++k) {
        const double reference = std::ldexp(1.0, 20 + static_cast<int>((k * 37) % 3));
        p.reference.push_back(reference);
        p.test.push_back(ratios[k] * reference);
    }
    return p;
}

// The hand computations below judge every interval of one pair (the rule's mechanics; by
// default one pair decides nothing, see OnePairIsOneDrawOfUnfairness).
analysis_settings one_pair_decides() {
    analysis_settings s;
    s.paired_min_pairs = 1;
    return s;
}
analysis_settings all_intervals() {
    analysis_settings s = one_pair_decides();
    s.paired_busiest_fraction = 1.0;
    return s;
}

paired_outcome run_paired(const std::vector<pair_data>& data,
                          const analysis_settings& settings = all_intervals()) {
    std::vector<aligned_pair> pairs;
    for (const pair_data& p : data) {
        pairs.push_back(aligned_pair{p.test, p.reference});
    }
    return paired_rule(pairs, settings);
}

TEST(PairedRule, ConstantHalfRateIsDifferentiated) {
    const auto p = run_paired({with_ratios(std::vector<double>(100, 0.5))});
    EXPECT_EQ(p.decision, rule_decision::differentiated);
    EXPECT_NEAR(p.ratio, 0.5, 1e-9);
    EXPECT_NEAR(p.ratio_low, 0.5, 1e-9);
    EXPECT_NEAR(p.ratio_high, 0.5, 1e-9);
    EXPECT_LT(p.p_value, 1e-10);
    EXPECT_EQ(p.intervals, 100u);
    EXPECT_EQ(p.pairs_below, 1u);
}

TEST(PairedRule, EqualRatesAreNone) {
    const auto p = run_paired({with_ratios(std::vector<double>(100, 1.0))});
    EXPECT_EQ(p.decision, rule_decision::none);
    EXPECT_NEAR(p.ratio, 1.0, 1e-9);
    EXPECT_GT(p.p_value, 0.99);
}

TEST(PairedRule, HandComputedOrderStatisticInterval) {
    // Ratios alternate 0.7 / 1.3: median exp((ln 0.7 + ln 1.3) / 2) = sqrt(0.91). Signs
    // alternate, so no serial correlation is found (n_eff = n = 100). z(0.995) = 2.5758:
    // half width 2.5758 * 100 / (2 * 10) = 12.88 ranks, k = floor(50.5 - 12.88) = 37, so the
    // interval is [r(37), r(64)] = [0.7, 1.3]: it straddles 0.8 -> inconclusive.
    std::vector<double> ratios;
    for (int k = 0; k < 100; ++k) {
        ratios.push_back(k % 2 == 0 ? 0.7 : 1.3);
    }
    const auto p = run_paired({with_ratios(ratios)});
    EXPECT_NEAR(p.ratio, std::sqrt(0.91), 1e-9);
    EXPECT_DOUBLE_EQ(p.effective_intervals, 100.0);
    EXPECT_NEAR(p.ratio_low, 0.7, 1e-9);
    EXPECT_NEAR(p.ratio_high, 1.3, 1e-9);
    EXPECT_EQ(p.decision, rule_decision::inconclusive);
    // Sign test against 0.8: 50 of 100 below, z = 0 -> p = 0.5.
    EXPECT_NEAR(p.p_value, 0.5, 1e-12);
}

TEST(PairedRule, SerialCorrelationWidensTheInterval) {
    // 80% of intervals at 0.6 and 20% at 1.0. Scattered in runs of two: the sign sequence has
    // lag-1 autocorrelation 0.5, tau = 2, n_eff = 50, k = floor(50.5 - 18.2) = 32 and the
    // interval [r(32), r(69)] = [0.6, 0.6] lies below 0.8: differentiated.
    std::vector<double> scattered;
    for (int k = 0; k < 100; ++k) {
        scattered.push_back(k % 10 < 2 ? 1.0 : 0.6);
    }
    const auto s = run_paired({with_ratios(scattered)});
    EXPECT_NEAR(s.effective_intervals, 50.0, 1e-9);
    EXPECT_NEAR(s.ratio_high, 0.6, 1e-9);
    EXPECT_EQ(s.decision, rule_decision::differentiated);
    // The same values in one contiguous block (one long burst): tau = 20, n_eff = 5, the
    // order-statistic interval is unbounded -> inconclusive.
    std::vector<double> blocked_run(80, 0.6);
    blocked_run.insert(blocked_run.end(), 20, 1.0);
    const auto b = run_paired({with_ratios(blocked_run)});
    EXPECT_NEAR(b.effective_intervals, 5.0, 1e-9);
    EXPECT_EQ(b.decision, rule_decision::inconclusive);
    EXPECT_NEAR(b.ratio, 0.6, 1e-9);
}

TEST(PairedRule, MajorityOfPairsMustAgree) {
    analysis_settings narrow = all_intervals();
    narrow.paired_confidence = 0.02; // interval ~ the median itself, to isolate the vote
    // Two pairs at 0.5 and a short one at 1.0: pooled median 0.5, 2 of 3 pairs below.
    const auto agree = run_paired({with_ratios(std::vector<double>(100, 0.5)),
                                   with_ratios(std::vector<double>(100, 0.5)),
                                   with_ratios(std::vector<double>(30, 1.0))},
                                  narrow);
    EXPECT_EQ(agree.pairs, 3u);
    EXPECT_EQ(agree.pairs_below, 2u);
    EXPECT_EQ(agree.decision, rule_decision::differentiated);
    // One long pair at 0.5 dominates the pooled median, but 2 of 3 pairs are at 1.0.
    const auto split = run_paired({with_ratios(std::vector<double>(150, 0.5)),
                                   with_ratios(std::vector<double>(50, 1.0)),
                                   with_ratios(std::vector<double>(50, 1.0))},
                                  narrow);
    EXPECT_NEAR(split.ratio, 0.5, 1e-9);
    EXPECT_EQ(split.pairs_below, 1u);
    EXPECT_EQ(split.decision, rule_decision::inconclusive);
}

TEST(PairedRule, BusiestIntervalsShowACapThatCrossTrafficHides) {
    // Blocks of 10 intervals alternate between an idle path, where BT is capped at half of
    // control (control 2^22 bit/s), and cross-traffic bursts, where both get 2^20 bit/s.
    pair_data p;
    for (int k = 0; k < 100; ++k) {
        const bool idle_path = (k / 10) % 2 == 0;
        p.reference.push_back(idle_path ? std::ldexp(1.0, 22) : std::ldexp(1.0, 20));
        p.test.push_back(idle_path ? std::ldexp(1.0, 21) : std::ldexp(1.0, 20));
    }
    // All intervals: half at 0.5, half at 1.0; the bounds straddle 0.8.
    const auto all = run_paired({p});
    EXPECT_NEAR(all.ratio, std::sqrt(0.5), 1e-9);
    EXPECT_EQ(all.decision, rule_decision::inconclusive);
    // Busiest half (the default): only the idle-path intervals, all at 0.5.
    const auto busy = run_paired({p}, one_pair_decides());
    EXPECT_EQ(busy.intervals, 50u);
    EXPECT_NEAR(busy.ratio, 0.5, 1e-9);
    EXPECT_EQ(busy.decision, rule_decision::differentiated);
}

TEST(PairedRule, ClearingNeedsTheNinetyPercentBound) {
    // Ratios alternate 0.85 / 1.25 in runs of one: n_eff = 100. The 99% lower bound is
    // r(37) = 0.85 and the 90% one r(42) = 0.85 (z = 1.645, k = floor(50.5 - 8.2)): both above
    // 0.8 -> none. Shift the low values to 0.78 and the 90% bound falls below: inconclusive.
    std::vector<double> ok;
    std::vector<double> low;
    for (int k = 0; k < 100; ++k) {
        ok.push_back(k % 2 == 0 ? 0.85 : 1.25);
        low.push_back(k % 2 == 0 ? 0.78 : 1.25);
    }
    const auto a = run_paired({with_ratios(ok)});
    EXPECT_NEAR(a.clear_low, 0.85, 1e-9);
    EXPECT_EQ(a.decision, rule_decision::none);
    const auto b = run_paired({with_ratios(low)});
    EXPECT_NEAR(b.clear_low, 0.78, 1e-9);
    EXPECT_EQ(b.decision, rule_decision::inconclusive);
}

TEST(PairedRule, OnePairIsOneDrawOfUnfairness) {
    // Two TCP flows started together can share a FIFO bottleneck unevenly for the whole flow,
    // so one pair's ratio, however steady, is a single draw: by default it decides nothing.
    const auto one = run_paired({with_ratios(std::vector<double>(100, 0.5))}, defaults);
    EXPECT_EQ(one.decision, rule_decision::inconclusive);
    EXPECT_NEAR(one.ratio, 0.5, 1e-9);
    const auto two = run_paired(
        {with_ratios(std::vector<double>(100, 1.0)), with_ratios(std::vector<double>(100, 1.0))},
        defaults);
    EXPECT_EQ(two.decision, rule_decision::inconclusive);
    // Three pairs that agree decide.
    const auto three = run_paired({with_ratios(std::vector<double>(100, 0.5)),
                                   with_ratios(std::vector<double>(100, 0.5)),
                                   with_ratios(std::vector<double>(100, 0.5))},
                                  defaults);
    EXPECT_EQ(three.pairs, 3u);
    EXPECT_EQ(three.decision, rule_decision::differentiated);
}

TEST(PairedRule, DegenerateInputs) {
    EXPECT_EQ(paired_rule({}, defaults).decision, rule_decision::not_applicable);
    // Too few intervals.
    const auto few = run_paired({with_ratios(std::vector<double>(10, 0.5))});
    EXPECT_EQ(few.decision, rule_decision::inconclusive);
    // Empty spans and all-idle intervals carry nothing.
    const auto idle =
        run_paired({pair_data{std::vector<double>(50, 0.0), std::vector<double>(50, 0.0)}});
    EXPECT_EQ(idle.intervals, 0u);
    EXPECT_EQ(idle.decision, rule_decision::inconclusive);
    EXPECT_TRUE(std::isfinite(idle.ratio));
    // BT silent while control runs: a finite, tiny ratio.
    const auto silent =
        run_paired({pair_data{std::vector<double>(50, 0.0), std::vector<double>(50, 8e6)}});
    EXPECT_TRUE(std::isfinite(silent.ratio));
    EXPECT_LT(silent.ratio, 0.01);
    EXPECT_EQ(silent.decision, rule_decision::differentiated);
    // Lengths differ: only the common prefix counts.
    const auto uneven =
        run_paired({pair_data{std::vector<double>(40, 1e6), std::vector<double>(25, 1e6)}});
    EXPECT_EQ(uneven.intervals, 25u);
    EXPECT_EQ(uneven.decision, rule_decision::none);
}

} // namespace
} // namespace glasnode::proto
