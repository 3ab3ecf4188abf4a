// Distribution-free statistics behind the differential-test rules: the two-sample
// Kolmogorov-Smirnov test (statistic, exact and asymptotic two-sided p-values), the area
// between two empirical CDFs, medians and normal quantiles.
//
// Contract: pure functions of their arguments. Inputs must be finite (callers validate data
// that came from the network, see verdict.hpp); every output is finite for finite inputs,
// empty inputs included (documented per function). Nothing allocates more than O(n1 + n2).
//
// Thread-safety: no shared state; callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace glasnode::proto {

struct ks_result {
    double statistic = 0.0; // D = sup |F1 - F2|, in [0, 1]
    double p_value = 1.0;   // two-sided P(D' >= D) under "same continuous distribution"
    bool exact = false;     // true: lattice-path count; false: Kolmogorov limit distribution
};

// Largest n1 * n2 for which ks_two_sample computes the exact p-value (one pass over an
// (n1 + 1) x (n2 + 1) lattice, O(n2) memory). 4e6 cells takes a few milliseconds; beyond it
// the asymptotic distribution is already accurate to well under 1e-3.
inline constexpr std::uint64_t ks_exact_max_cells = 4'000'000;

// Two-sample KS test. D is computed exactly in integer arithmetic (D * n1 * n2 is an integer),
// so the p-value does not depend on rounding D. Exact p-value (n1 * n2 <= exact_max_cells):
// the probability that a uniformly random monotone lattice path from (0,0) to (n1,n2) -- the
// merge order of the two samples under the null hypothesis -- reaches |x*n2 - y*n1| >= D*n1*n2.
// This is the quantity scipy.stats.ks_2samp(method='exact', alternative='two-sided')
// computes; it is accumulated as a sum of positive path masses, so small p-values keep their
// relative precision. Ties are handled as scipy does (D at the distinct values; the null
// distribution assumes no ties, which makes the test conservative).
// Asymptotic p-value: Q_KS(sqrt(n1*n2/(n1+n2)) * D), the Kolmogorov limit distribution
// (scipy.stats.kstwobign.sf). Either sample empty: D = 0, p = 1 (no evidence).
ks_result ks_two_sample(std::span<const double> a, std::span<const double> b,
                        std::uint64_t exact_max_cells = ks_exact_max_cells);

// Exact two-sided p-value P(max |x*n2 - y*n1| >= d_scaled) over uniformly random lattice
// paths from (0,0) to (n1,n2); d_scaled = D * n1 * n2. d_scaled <= 0 gives 1; n1 or n2 zero
// gives 1.
double ks_exact_p_value(std::uint32_t n1, std::uint32_t n2, std::uint64_t d_scaled);

// Kolmogorov distribution survival function Q(lambda) = 2 sum_{k>=1} (-1)^(k-1) e^(-2 k^2
// lambda^2); 1 for lambda <= 0. Uses the Jacobi theta form for small lambda, where the
// alternating series converges slowly.
double kolmogorov_sf(double lambda);

struct cdf_area {
    // Integral of |F_a(x) - F_b(x)| dx over the real line (the area between the two empirical
    // CDFs, in the samples' unit). 0 when either sample is empty.
    double absolute = 0.0;
    // Integral of (F_a(x) - F_b(x)) dx = mean(b) - mean(a): positive when a is stochastically
    // smaller (for throughputs: when a is the slower flow).
    double signed_area = 0.0;
};
cdf_area area_between_cdfs(std::span<const double> a, std::span<const double> b);

// Median (mean of the two middle values for an even count); 0 for an empty input.
double median(std::span<const double> values);
double mean(std::span<const double> values);
// The q-quantile, q in [0, 1] (clamped), interpolating linearly between order statistics
// (Hyndman and Fan's type 7, the default of R and numpy): with x sorted and h = (n - 1) q,
// x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]). 0 for an empty input.
double quantile(std::span<const double> values, double q);

// Standard normal: upper tail 1 - Phi(z) and the quantile Phi^-1(p) for p in (0, 1)
// (clamped to +-8.3 outside it).
double normal_sf(double z);
double normal_quantile(double p);

} // namespace glasnode::proto
