#include "tests_proto/analysis/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace glasnode::proto {

namespace {

std::vector<double> sorted_copy(std::span<const double> values) {
    std::vector<double> out(values.begin(), values.end());
    std::sort(out.begin(), out.end());
    return out;
}

// Walks the merged distinct values of two sorted samples; at each distinct value t calls
// step(t, count of a <= t, count of b <= t).
template <class Step>
void walk_merged(const std::vector<double>& a, const std::vector<double>& b, Step&& step) {
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < a.size() || j < b.size()) {
        double t = 0.0;
        if (i == a.size()) {
            t = b[j];
        } else if (j == b.size()) {
            t = a[i];
        } else {
            t = std::min(a[i], b[j]);
        }
        while (i < a.size() && a[i] == t) {
            ++i;
        }
        while (j < b.size() && b[j] == t) {
            ++j;
        }
        step(t, i, j);
    }
}

} // namespace

double ks_exact_p_value(std::uint32_t n1, std::uint32_t n2, std::uint64_t d_scaled) {
    if (d_scaled == 0 || n1 == 0 || n2 == 0) {
        return 1.0;
    }
    const auto m = static_cast<std::int64_t>(n1);
    const auto n = static_cast<std::int64_t>(n2);
    const auto d = static_cast<std::int64_t>(d_scaled);
    if (d > m * n) {
        return 0.0;
    }
    // prev/cur hold, for rows x-1 and x, the probability mass of random paths that reached
    // (x, y) without ever leaving the band |x*n - y*m| < d. Mass stepping onto a point outside
    // the band is added to `outside` and not propagated: each path is counted once, at its
    // first exit, and every term is non-negative.
    std::vector<double> prev(n2 + 1, 0.0);
    std::vector<double> cur(n2 + 1, 0.0);
    double outside = 0.0;
    for (std::int64_t x = 0; x <= m; ++x) {
        for (std::int64_t y = 0; y <= n; ++y) {
            double mass = 0.0;
            if (x == 0 && y == 0) {
                mass = 1.0;
            } else {
                if (x > 0) {
                    const double left = static_cast<double>(m - x + 1);
                    mass += prev[static_cast<std::size_t>(y)] * left /
                            (left + static_cast<double>(n - y));
                }
                if (y > 0) {
                    const double left = static_cast<double>(n - y + 1);
                    mass += cur[static_cast<std::size_t>(y - 1)] * left /
                            (left + static_cast<double>(m - x));
                }
            }
            const std::int64_t v = x * n - y * m;
            if (v >= d || -v >= d) {
                outside += mass;
                cur[static_cast<std::size_t>(y)] = 0.0;
            } else {
                cur[static_cast<std::size_t>(y)] = mass;
            }
        }
        std::swap(prev, cur);
    }
    return std::clamp(outside, 0.0, 1.0);
}

double kolmogorov_sf(double lambda) {
    if (!(lambda > 0.0)) {
        return 1.0;
    }
    constexpr double pi = std::numbers::pi;
    if (lambda < 1.18) {
        // P(K <= lambda) = sqrt(2 pi) / lambda * sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 lambda^2))
        const double w = pi * pi / (8.0 * lambda * lambda);
        double sum = 0.0;
        for (int k = 1; k <= 20; ++k) {
            const double odd = 2.0 * k - 1.0;
            const double term = std::exp(-odd * odd * w);
            sum += term;
            if (term < 1e-300) {
                break;
            }
        }
        const double cdf = std::sqrt(2.0 * pi) / lambda * sum;
        return std::clamp(1.0 - cdf, 0.0, 1.0);
    }
    double sum = 0.0;
    for (int k = 1; k <= 100; ++k) {
        const double term = std::exp(-2.0 * k * k * lambda * lambda);
        sum += (k % 2 == 1) ? term : -term;
        if (term < 1e-300) {
            break;
        }
    }
    return std::clamp(2.0 * sum, 0.0, 1.0);
}

ks_result ks_two_sample(std::span<const double> a, std::span<const double> b,
                        std::uint64_t exact_max_cells) {
    ks_result out;
    if (a.empty() || b.empty()) {
        return out;
    }
    const std::vector<double> sa = sorted_copy(a);
    const std::vector<double> sb = sorted_copy(b);
    const auto n1 = static_cast<std::int64_t>(sa.size());
    const auto n2 = static_cast<std::int64_t>(sb.size());
    std::int64_t d_scaled = 0;
    walk_merged(sa, sb, [&](double, std::size_t i, std::size_t j) {
        const std::int64_t v =
            static_cast<std::int64_t>(i) * n2 - static_cast<std::int64_t>(j) * n1;
        d_scaled = std::max(d_scaled, v < 0 ? -v : v);
    });
    const double cells = static_cast<double>(n1) * static_cast<double>(n2);
    out.statistic = static_cast<double>(d_scaled) / cells;
    if (static_cast<std::uint64_t>(n1) * static_cast<std::uint64_t>(n2) <= exact_max_cells) {
        out.exact = true;
        out.p_value =
            ks_exact_p_value(static_cast<std::uint32_t>(n1), static_cast<std::uint32_t>(n2),
                             static_cast<std::uint64_t>(d_scaled));
    } else {
        const double en = cells / static_cast<double>(n1 + n2);
        out.p_value = kolmogorov_sf(std::sqrt(en) * out.statistic);
    }
    return out;
}

cdf_area area_between_cdfs(std::span<const double> a, std::span<const double> b) {
    cdf_area out;
    if (a.empty() || b.empty()) {
        return out;
    }
    const std::vector<double> sa = sorted_copy(a);
    const std::vector<double> sb = sorted_copy(b);
    const double n1 = static_cast<double>(sa.size());
    const double n2 = static_cast<double>(sb.size());
    bool first = true;
    double last_t = 0.0;
    double last_diff = 0.0;
    walk_merged(sa, sb, [&](double t, std::size_t i, std::size_t j) {
        if (!first) {
            const double width = t - last_t;
            out.absolute += std::fabs(last_diff) * width;
            out.signed_area += last_diff * width;
        }
        first = false;
        last_t = t;
        last_diff = static_cast<double>(i) / n1 - static_cast<double>(j) / n2;
    });
    return out;
}

double median(std::span<const double> values) {
    if (values.empty()) {
        return 0.0;
    }
    std::vector<double> v(values.begin(), values.end());
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    const double upper = v[mid];
    if (v.size() % 2 == 1) {
        return upper;
    }
    const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
    return lower + (upper - lower) / 2.0;
}

double quantile(std::span<const double> values, double q) {
    if (values.empty()) {
        return 0.0;
    }
    std::vector<double> v(values.begin(), values.end());
    std::sort(v.begin(), v.end());
    const double h = static_cast<double>(v.size() - 1) * std::clamp(q, 0.0, 1.0);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double mean(std::span<const double> values) {
    if (values.empty()) {
        return 0.0;
    }
    double sum = 0.0;
    for (double v : values) {
        sum += v;
    }
    return sum / static_cast<double>(values.size());
}

double normal_sf(double z) {
    return 0.5 * std::erfc(z / std::numbers::sqrt2);
}

double normal_quantile(double p) {
    if (!(p > 0.0)) {
        return -8.3;
    }
    if (!(p < 1.0)) {
        return 8.3;
    }
    // Acklam's rational approximation (relative error 1.15e-9), then one Newton step on
    // Phi(x) - p, which brings it to double precision for the p used here.
    static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                   -2.759285104469687e+02, 1.383577518672690e+02,
                                   -3.066479806614716e+01, 2.506628277459239e+00};
    static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                   -1.556989798598866e+02, 6.680131188771972e+01,
                                   -1.328068155288572e+01};
    static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                   -2.400758277161838e+00, -2.549732539343734e+00,
                                   4.374664141464968e+00,  2.938163982698783e+00};
    static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                   2.445134137142996e+00, 3.754408661907416e+00};
    constexpr double low = 0.02425;
    double x = 0.0;
    if (p < low) {
        const double q = std::sqrt(-2.0 * std::log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    } else if (p <= 1.0 - low) {
        const double q = p - 0.5;
        const double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    } else {
        const double q = std::sqrt(-2.0 * std::log(1.0 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    const double err = 0.5 * std::erfc(-x / std::numbers::sqrt2) - p;
    const double density = std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
    if (density > 0.0) {
        x -= err / density;
    }
    return std::clamp(x, -8.3, 8.3);
}

} // namespace glasnode::proto
