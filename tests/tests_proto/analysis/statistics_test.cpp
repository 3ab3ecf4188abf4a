#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tests_proto/analysis/statistics.hpp"

namespace glasnode::proto {
namespace {

// Reference values below were computed once with SciPy 1.10.1:
//   scipy.stats.ks_2samp(a, b, method='exact')      -> (statistic, pvalue)
//   scipy.stats.kstwobign.sf(x)                      -> Kolmogorov limit survival function
// on the sample sets built by the generators below (integer-valued, so exact in both
// languages). Relative tolerance 1e-9 leaves room for summation order only.

std::vector<double> modular(int count, int multiplier, int modulus, int offset) {
    std::vector<double> out;
    for (int i = 0; i < count; ++i) {
        out.push_back(static_cast<double>((i * multiplier) % modulus + offset));
    }
    return out;
}

void expect_relative(double actual, double expected, double tolerance = 1e-9) {
    EXPECT_NEAR(actual, expected, tolerance * expected) << "expected " << expected;
}

struct ks_case {
    const char* name;
    std::vector<double> a;
    std::vector<double> b;
    double statistic;
    double p_value;
};

TEST(KsTwoSample, MatchesScipyExactOnEqualAndUnequalSizes) {
    const std::vector<double> base = modular(100, 37, 101, 0);
    const std::vector<ks_case> cases = {
        {"eq100 shift3", base, modular(100, 53, 103, 3), 0.05, 0.9996892272702655},
        {"eq100 shift12", base, modular(100, 53, 103, 12), 0.14, 0.2819416298082479},
        {"eq100 shift20", base, modular(100, 53, 103, 20), 0.21, 0.024055802841094577},
        {"eq100 shift25", base, modular(100, 53, 103, 25), 0.26, 0.002219935934558366},
        {"eq100 shift40", base, modular(100, 53, 103, 40), 0.41, 6.617357604827955e-08},
        {"100 vs 80", base, modular(80, 29, 89, 5), 0.07, 0.9707041483799443},
        {"100 vs 80 shift25", base, modular(80, 29, 89, 25), 0.27, 0.002453198230613655},
        {"100 vs 120 shift30", base, modular(120, 31, 97, 30), 0.3, 7.903091066696779e-05},
        {"eq1000", modular(1000, 7919, 1000, 0), modular(1000, 7907, 1009, 20), 0.028,
         0.8282194040312439},
    };
    for (const ks_case& c : cases) {
        SCOPED_TRACE(c.name);
        const ks_result r = ks_two_sample(c.a, c.b);
        EXPECT_TRUE(r.exact);
        EXPECT_NEAR(r.statistic, c.statistic, 1e-12);
        expect_relative(r.p_value, c.p_value);
    }
}

TEST(KsTwoSample, HandComputedSmallCase) {
    // Disjoint samples of 5 and 4: D = 1; only the two extreme merge orders out of C(9,4) =
    // 126 reach it, so p = 2/126.
    const std::vector<double> a = {1, 2, 3, 4, 5};
    const std::vector<double> b = {6, 7, 8, 9};
    const ks_result r = ks_two_sample(a, b);
    EXPECT_DOUBLE_EQ(r.statistic, 1.0);
    expect_relative(r.p_value, 2.0 / 126.0, 1e-14);
    // Symmetric in its arguments.
    expect_relative(ks_two_sample(b, a).p_value, 2.0 / 126.0, 1e-14);
}

TEST(KsTwoSample, TinyPValueKeepsRelativePrecision) {
    // 2 / C(200, 100) = 2.2087606931995e-59 (scipy gives 2.2087606931995054e-59).
    std::vector<double> a;
    std::vector<double> b;
    for (int i = 0; i < 100; ++i) {
        a.push_back(i);
        b.push_back(100 + i);
    }
    const ks_result r = ks_two_sample(a, b);
    EXPECT_DOUBLE_EQ(r.statistic, 1.0);
    expect_relative(r.p_value, 2.2087606931995054e-59, 1e-9);
}

TEST(KsTwoSample, TiesAreHandledAsScipyDoes) {
    const ks_result r = ks_two_sample(modular(60, 1, 7, 0), modular(50, 1, 9, 0));
    EXPECT_NEAR(r.statistic, 0.2, 1e-12);
    expect_relative(r.p_value, 0.19664441766910834);
}

TEST(KsTwoSample, LargeSamplesUseTheKolmogorovLimit) {
    // 3000 x 2500 = 7.5e6 cells > ks_exact_max_cells: asymptotic. SciPy:
    // kstwobign.sf(sqrt(3000*2500/5500) * D) = 4.956408072914485e-28 (exact: 3.51e-28).
    const std::vector<double> a = modular(3000, 7919, 3001, 0);
    const std::vector<double> b = modular(2500, 104729, 2503, 40);
    const ks_result r = ks_two_sample(a, b);
    EXPECT_FALSE(r.exact);
    EXPECT_NEAR(r.statistic, 0.15266666666666662, 1e-12);
    expect_relative(r.p_value, 4.956408072914485e-28, 1e-6);
    // Forcing the exact path on the same data agrees with scipy's exact value.
    const ks_result exact = ks_two_sample(a, b, 10'000'000);
    EXPECT_TRUE(exact.exact);
    expect_relative(exact.p_value, 3.5095231797889235e-28, 1e-6);
}

TEST(KsTwoSample, DegenerateInputs) {
    const std::vector<double> empty;
    const std::vector<double> some = {1.0, 2.0};
    for (const ks_result& r :
         {ks_two_sample(empty, some), ks_two_sample(some, empty), ks_two_sample(empty, empty)}) {
        EXPECT_EQ(r.statistic, 0.0);
        EXPECT_EQ(r.p_value, 1.0);
    }
    const std::vector<double> zeros(100, 0.0);
    const ks_result same = ks_two_sample(zeros, zeros);
    EXPECT_EQ(same.statistic, 0.0);
    EXPECT_EQ(same.p_value, 1.0);
    const ks_result one = ks_two_sample(std::vector<double>{1.0}, std::vector<double>{2.0});
    EXPECT_EQ(one.statistic, 1.0);
    EXPECT_DOUBLE_EQ(one.p_value, 1.0); // both merge orders reach D = 1
}

TEST(KsExactPValue, EdgeArguments) {
    EXPECT_EQ(ks_exact_p_value(10, 10, 0), 1.0);
    EXPECT_EQ(ks_exact_p_value(0, 10, 5), 1.0);
    EXPECT_EQ(ks_exact_p_value(10, 10, 101), 0.0); // beyond the largest possible D
    // D = 1 for n = m = 1 is reached by both orders.
    EXPECT_DOUBLE_EQ(ks_exact_p_value(1, 1, 1), 1.0);
}

TEST(KolmogorovSf, MatchesScipyKstwobign) {
    const std::vector<std::pair<double, double>> cases = {
        {0.05, 1.0},
        {0.3, 0.9999906941986655},
        {0.8, 0.5441424115741981},
        {1.0, 0.26999967167735456},
        {1.17, 0.12939004218561884},
        {1.19, 0.11774229287977166},
        {1.5, 0.022217962616525127},
        {2.5, 7.453306344157342e-06},
        {4.0, 2.532833109818835e-14},
    };
    for (const auto& [lambda, expected] : cases) {
        SCOPED_TRACE(lambda);
        expect_relative(kolmogorov_sf(lambda), expected, 1e-9);
    }
    EXPECT_EQ(kolmogorov_sf(0.0), 1.0);
    EXPECT_EQ(kolmogorov_sf(-1.0), 1.0);
}

TEST(AreaBetweenCdfs, HandComputedStepFunctions) {
    // F_a jumps at 1, 2, 3 and F_b at 2, 3, 4: they differ by 1/3 on [1,4), area 1; a is the
    // slower sample, so the signed area is +1 (= mean(b) - mean(a)).
    const std::vector<double> a = {3, 1, 2};
    const std::vector<double> b = {2, 4, 3};
    const cdf_area area = area_between_cdfs(a, b);
    EXPECT_DOUBLE_EQ(area.absolute, 1.0);
    EXPECT_DOUBLE_EQ(area.signed_area, 1.0);
    const cdf_area reversed = area_between_cdfs(b, a);
    EXPECT_DOUBLE_EQ(reversed.absolute, 1.0);
    EXPECT_DOUBLE_EQ(reversed.signed_area, -1.0);
}

TEST(AreaBetweenCdfs, CrossingCdfsCancelInTheSignedArea) {
    // a = {0, 10}, b = {5, 5}: F_a - F_b = +1/2 on [0,5), -1/2 on [5,10): area 5, signed 0.
    const cdf_area area = area_between_cdfs(std::vector<double>{0, 10}, std::vector<double>{5, 5});
    EXPECT_DOUBLE_EQ(area.absolute, 5.0);
    EXPECT_DOUBLE_EQ(area.signed_area, 0.0);
}

TEST(AreaBetweenCdfs, UnequalSizesAndEmptyInputs) {
    // a = {1, 3}, b = {2}: |F_a - F_b| = 1/2 on [1,2), 1/2 on [2,3): area 1; signed 1/2 - 1/2.
    const cdf_area area = area_between_cdfs(std::vector<double>{1, 3}, std::vector<double>{2});
    EXPECT_DOUBLE_EQ(area.absolute, 1.0);
    EXPECT_DOUBLE_EQ(area.signed_area, 0.0);
    const cdf_area empty = area_between_cdfs(std::vector<double>{}, std::vector<double>{1});
    EXPECT_EQ(empty.absolute, 0.0);
    EXPECT_EQ(empty.signed_area, 0.0);
}

TEST(Median, OddEvenEmpty) {
    EXPECT_EQ(median(std::vector<double>{3, 1, 2}), 2.0);
    EXPECT_EQ(median(std::vector<double>{4, 1, 3, 2}), 2.5);
    EXPECT_EQ(median(std::vector<double>{}), 0.0);
    EXPECT_EQ(mean(std::vector<double>{}), 0.0);
    EXPECT_EQ(mean(std::vector<double>{1, 2, 6}), 3.0);
}

TEST(Quantile, InterpolatesBetweenOrderStatisticsLikeNumpy) {
    const std::vector<double> v{10, 40, 20, 30}; // sorted 10 20 30 40
    // numpy.quantile(v, q): h = 3 q
    EXPECT_DOUBLE_EQ(quantile(v, 0.0), 10.0);
    EXPECT_DOUBLE_EQ(quantile(v, 0.5), 25.0); // h = 1.5
    EXPECT_DOUBLE_EQ(quantile(v, 0.9), 37.0); // h = 2.7: 30 + 0.7 * 10
    EXPECT_DOUBLE_EQ(quantile(v, 1.0), 40.0);
    EXPECT_DOUBLE_EQ(quantile(v, 1.5), 40.0); // clamped
    EXPECT_DOUBLE_EQ(quantile(v, -1.0), 10.0);
    EXPECT_DOUBLE_EQ(quantile(std::vector<double>{7}, 0.9), 7.0);
    EXPECT_EQ(quantile(std::vector<double>{}, 0.9), 0.0);
    // 100 values 1..100: h = 89.1 -> 90 + 0.1 = 90.1 (numpy.quantile(range(1, 101), 0.9)).
    std::vector<double> hundred;
    for (int i = 100; i >= 1; --i)
        hundred.push_back(i);
    EXPECT_NEAR(quantile(hundred, 0.9), 90.1, 1e-12);
}

TEST(Normal, QuantileAndTailMatchScipy) {
    // scipy.stats.norm.ppf(0.995), norm.ppf(0.01), norm.sf(1.5)
    EXPECT_NEAR(normal_quantile(0.995), 2.5758293035489004, 1e-12);
    EXPECT_NEAR(normal_quantile(0.01), -2.3263478740408408, 1e-12);
    EXPECT_NEAR(normal_sf(1.5), 0.06680720126885807, 1e-15);
    EXPECT_EQ(normal_quantile(0.0), -8.3);
    EXPECT_EQ(normal_quantile(1.0), 8.3);
}

} // namespace
} // namespace glasnode::proto
