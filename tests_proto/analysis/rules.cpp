#include "tests_proto/analysis/rules.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "tests_proto/analysis/statistics.hpp"

namespace glasnode::proto {

std::string_view to_string(rule_decision d) noexcept {
    switch (d) {
    case rule_decision::not_applicable:
        return "not-applicable";
    case rule_decision::none:
        return "none";
    case rule_decision::differentiated:
        return "differentiated";
    case rule_decision::inconclusive:
        return "inconclusive";
    }
    return "unknown";
}

namespace {

double max_of(std::span<const double> values) {
    double m = 0.0;
    for (double v : values) {
        m = std::max(m, v);
    }
    return m;
}

// Glasnost's noise of one flow kind: how far the median repetition falls below the best one.
double glasnost_noise(std::span<const double> means, double max_value) {
    if (max_value <= 0.0) {
        return 0.0;
    }
    return (max_value - median(means)) / max_value;
}

} // namespace

glasnost_outcome glasnost_rule(std::span<const double> test_means,
                               std::span<const double> reference_means,
                               const analysis_settings& settings) {
    glasnost_outcome out;
    out.test_count = test_means.size();
    out.reference_count = reference_means.size();
    if (test_means.empty() || reference_means.empty()) {
        return out;
    }
    out.test_max_bps = max_of(test_means);
    out.reference_max_bps = max_of(reference_means);
    out.test_noise = glasnost_noise(test_means, out.test_max_bps);
    out.reference_noise = glasnost_noise(reference_means, out.reference_max_bps);
    if (out.reference_max_bps > 0.0) {
        out.relative_difference =
            (out.reference_max_bps - out.test_max_bps) / out.reference_max_bps;
    }
    if (test_means.size() < 2 || reference_means.size() < 2 || out.reference_max_bps <= 0.0 ||
        out.test_noise > settings.glasnost_noise_max ||
        out.reference_noise > settings.glasnost_noise_max) {
        out.decision = rule_decision::inconclusive;
        return out;
    }
    out.decision = out.relative_difference > settings.glasnost_difference_min
                       ? rule_decision::differentiated
                       : rule_decision::none;
    return out;
}

wehe_outcome wehe_rule(std::span<const double> test_samples,
                       std::span<const double> reference_samples,
                       const analysis_settings& settings) {
    wehe_outcome out;
    out.test_samples = test_samples.size();
    out.reference_samples = reference_samples.size();
    if (test_samples.empty() || reference_samples.empty()) {
        return out;
    }
    out.test_mean_bps = mean(test_samples);
    out.reference_mean_bps = mean(reference_samples);
    const ks_result ks =
        ks_two_sample(test_samples, reference_samples, settings.ks_exact_max_cells);
    out.ks_statistic = ks.statistic;
    out.ks_p = ks.p_value;
    out.ks_exact = ks.exact;

    const double test_max = max_of(test_samples);
    const double reference_max = max_of(reference_samples);
    double width = std::min(test_max, reference_max);
    if (width <= 0.0) {
        // One side never moved a byte: fall back to the other's range so the area stays
        // finite (the blocked check, not this rule, judges such flows).
        width = std::max(test_max, reference_max);
    }
    if (width > 0.0) {
        const cdf_area area = area_between_cdfs(test_samples, reference_samples);
        out.area = area.absolute / width;
        out.signed_area = area.signed_area / width;
        if (!std::isfinite(out.area) || !std::isfinite(out.signed_area)) {
            // Rates at the ends of the double's range, which analyse() refuses before any rule
            // runs (check_flow_figures): no flow has them, so no decision either.
            out.area = 0.0;
            out.signed_area = 0.0;
            out.decision = rule_decision::not_applicable;
            return out;
        }
    }
    out.area_threshold =
        std::max(out.test_mean_bps, out.reference_mean_bps) > settings.wehe_fast_bps
            ? settings.wehe_area_min_fast
            : settings.wehe_area_min;
    const bool differs = out.area >= out.area_threshold && out.ks_p < settings.wehe_ks_alpha;
    out.decision =
        differs && out.signed_area > 0.0 ? rule_decision::differentiated : rule_decision::none;
    return out;
}

namespace {

// Integrated autocorrelation time of the sign sequences (one per pair), truncated at the first
// lag whose pooled autocorrelation is not positive. 1 for independent intervals.
double sign_autocorrelation_time(const std::vector<std::vector<double>>& series, double centre) {
    std::vector<std::vector<int>> signs;
    std::size_t longest = 0;
    double energy = 0.0;
    for (const auto& s : series) {
        std::vector<int> v;
        v.reserve(s.size());
        for (double r : s) {
            const int sign = r > centre ? 1 : (r < centre ? -1 : 0);
            v.push_back(sign);
            energy += static_cast<double>(sign * sign);
        }
        longest = std::max(longest, v.size());
        signs.push_back(std::move(v));
    }
    if (energy <= 0.0) {
        return 1.0;
    }
    double tau = 1.0;
    const std::size_t max_lag = longest / 4;
    for (std::size_t lag = 1; lag <= max_lag; ++lag) {
        double acc = 0.0;
        for (const auto& v : signs) {
            for (std::size_t i = 0; i + lag < v.size(); ++i) {
                acc += static_cast<double>(v[i] * v[i + lag]);
            }
        }
        const double rho = acc / energy;
        if (rho <= 0.0) {
            break;
        }
        tau += 2.0 * rho;
    }
    return tau;
}

// Smallest combined rate (test + reference) among the `fraction` busiest non-idle intervals of
// a pair. Under neutrality the two flows of a pair are exchangeable, so their log ratio stays
// symmetric around 0 whatever the combined rate: selecting on it keeps the rule unbiased,
// while a throttle shows most where the path had room for more than the cap.
double busy_cutoff(const aligned_pair& p, std::size_t n, double fraction) {
    std::vector<double> totals;
    for (std::size_t k = 0; k < n; ++k) {
        const double total = p.test[k] + p.reference[k];
        if (total > 0.0) {
            totals.push_back(total);
        }
    }
    if (totals.empty() || !(fraction < 1.0)) {
        return 0.0;
    }
    const auto keep = static_cast<std::size_t>(
        std::ceil(std::max(fraction, 0.0) * static_cast<double>(totals.size())));
    if (keep == 0) {
        return 0.0;
    }
    std::nth_element(totals.begin(), totals.begin() + static_cast<std::ptrdiff_t>(keep - 1),
                     totals.end(), std::greater<>());
    return totals[keep - 1];
}

} // namespace

paired_outcome paired_rule(std::span<const aligned_pair> pairs, const analysis_settings& settings) {
    paired_outcome out;
    if (pairs.empty()) {
        return out;
    }
    // A zero-rate interval counts as a rate far below the pooled median so that a stalled
    // interval yields a large, finite log ratio instead of an infinity.
    std::vector<double> positive;
    for (const aligned_pair& p : pairs) {
        const std::size_t n = std::min(p.test.size(), p.reference.size());
        for (std::size_t k = 0; k < n; ++k) {
            if (p.test[k] > 0.0) {
                positive.push_back(p.test[k]);
            }
            if (p.reference[k] > 0.0) {
                positive.push_back(p.reference[k]);
            }
        }
    }
    const double floor_bps = std::max(1.0, 1e-3 * median(positive));

    std::vector<std::vector<double>> series;
    std::vector<double> pooled;
    for (const aligned_pair& p : pairs) {
        const std::size_t n = std::min(p.test.size(), p.reference.size());
        const double busy_from = busy_cutoff(p, n, settings.paired_busiest_fraction);
        std::vector<double> s;
        for (std::size_t k = 0; k < n; ++k) {
            if (p.test[k] <= 0.0 && p.reference[k] <= 0.0) {
                continue; // both idle: the interval says nothing about the ratio
            }
            if (p.test[k] + p.reference[k] < busy_from) {
                continue;
            }
            const double test = p.test[k] > 0.0 ? p.test[k] : floor_bps;
            const double reference = p.reference[k] > 0.0 ? p.reference[k] : floor_bps;
            s.push_back(std::log(test / reference));
        }
        if (!s.empty()) {
            pooled.insert(pooled.end(), s.begin(), s.end());
            series.push_back(std::move(s));
        }
    }
    out.pairs = series.size();
    out.intervals = pooled.size();
    if (pooled.empty()) {
        out.decision = rule_decision::inconclusive;
        return out;
    }
    std::sort(pooled.begin(), pooled.end());
    const double centre = median(pooled);
    out.ratio = std::exp(centre);
    const double log_threshold = std::log(settings.paired_ratio_threshold);

    std::size_t pairs_above = 0;
    for (const auto& s : series) {
        const double m = median(s);
        if (m < log_threshold) {
            ++out.pairs_below;
        } else if (m > log_threshold) {
            ++pairs_above;
        }
    }

    const double n = static_cast<double>(pooled.size());
    const double tau = sign_autocorrelation_time(series, centre);
    out.effective_intervals = std::clamp(n / tau, 1.0, n);

    // Sign-test inversion with the effective count: the ranks n/2 -+ z * n / (2 sqrt(n_eff))
    // bound the median (the usual z * sqrt(n) / 2 when n_eff = n). Returns the 1-based rank k
    // of the lower bound (the upper one is n + 1 - k), or 0 when the data cannot bound it.
    auto bound_rank = [&](double two_sided_confidence) -> std::size_t {
        const double z = normal_quantile(1.0 - (1.0 - two_sided_confidence) / 2.0);
        const double half_width = z * n / (2.0 * std::sqrt(out.effective_intervals));
        const double k_real = std::floor((n + 1.0) / 2.0 - half_width);
        return k_real >= 1.0 ? static_cast<std::size_t>(k_real) : 0;
    };
    const std::size_t k = bound_rank(settings.paired_confidence);
    const std::size_t k_clear = bound_rank(settings.paired_clear_confidence);
    const std::size_t shown = std::max<std::size_t>(k, 1);
    out.ratio_low = std::exp(pooled[shown - 1]);
    out.ratio_high = std::exp(pooled[pooled.size() - shown]);
    out.clear_low = k_clear > 0 ? std::exp(pooled[k_clear - 1]) : 0.0;

    double below = 0.0;
    for (double r : pooled) {
        below += r < log_threshold ? 1.0 : (r == log_threshold ? 0.5 : 0.0);
    }
    const double z_below = (below / n - 0.5) * 2.0 * std::sqrt(out.effective_intervals);
    out.p_value = std::clamp(normal_sf(z_below), 0.0, 1.0);

    const bool majority_below = 2 * out.pairs_below > out.pairs;
    const bool majority_above = 2 * pairs_above > out.pairs;
    if (out.intervals < settings.paired_min_intervals || out.pairs < settings.paired_min_pairs) {
        out.decision = rule_decision::inconclusive;
    } else if (k > 0 && out.ratio_high < settings.paired_ratio_threshold && majority_below) {
        out.decision = rule_decision::differentiated;
    } else if (k_clear > 0 && out.clear_low > settings.paired_ratio_threshold && majority_above) {
        out.decision = rule_decision::none;
    } else {
        out.decision = rule_decision::inconclusive;
    }
    return out;
}

} // namespace glasnode::proto
