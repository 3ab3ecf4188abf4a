// How far each throughput rule of the analysis stays from its threshold, on neutral paths and on
// throttled ones: the statistic each rule thresholds, over many seeded tests on the synthetic
// paths of tests/tests_proto/analysis/synthetic_paths.hpp, as quantiles. A rule whose neutral
// 99th percentile sits just under its threshold accuses a neutral path now and then; one whose
// throttled 1st percentile sits just above it misses throttles. It measures; it asserts nothing.
//
//   glasnode_rule_margins [TRIALS] [SEED] [REPETITIONS] [FLOW_S] [RERUN_REPETITIONS]
//   (defaults 1000 1 2 2.5, and the rerun as many repetitions as the test)
//
// One download test per trial: BT and control on the BT port and on the neutral port, sequential
// repetitions (two of 2.5 s flows by default, the node's default schedule) with 200 ms samples
// (its interval at 20 ms RTT), on a 40 Mbit/s path. The content comparison on the BT port is the
// one reported. Statistics (all "larger = the BT flows slower"): peak, late and glasnost: relative
// difference of the maxima (threshold glasnost_difference_min); wehe: signed normalised CDF area
// (threshold wehe_area_min or wehe_area_min_fast, with KS p < wehe_ks_alpha also needed). A rule
// that did not apply or whose noise check voided it is counted apart (void). Then, per path, how
// often the combined verdict (verdict.hpp, with the node's confirmation rerun) accused, stayed
// inconclusive, or was the one right verdict.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/tests_proto/analysis/synthetic_paths.hpp"
#include "tests_proto/analysis/verdict.hpp"

namespace {

using namespace glasnode::proto;

struct path_row {
    const char* name;
    synthetic::path_config path;
    bool throttled;
};

std::vector<path_row> paths() {
    synthetic::path_config clean;
    synthetic::path_config lossy = clean;
    lossy.random_loss = 0.01;
    synthetic::path_config bursty = clean;
    bursty.cross_mean_on_s = 1.5;
    bursty.cross_mean_off_s = 1.5;
    using synthetic::capped;
    return {
        {"clean", clean, false},
        {"loss 1%", lossy, false},
        {"on/off cross traffic", bursty, false},
        {"cap 60%", capped(clean, 0.6), true},
        {"cap 40%", capped(clean, 0.4), true},
        {"cross + cap 40%", capped(bursty, 0.4), true},
        {"10% after 3 MB", capped(clean, 0.1, 3e6), true},
        {"40% after 5 MB", capped(clean, 0.4, 5e6), true},
        {"cross + 10% after 3 MB", capped(bursty, 0.1, 3e6), true},
    };
}

struct series {
    std::vector<double> values;
    int voided = 0;
    int decided = 0; // differentiated
};

void add(series& s, const glasnost_outcome& g) {
    if (g.decision == rule_decision::differentiated || g.decision == rule_decision::none) {
        s.values.push_back(g.relative_difference);
        s.decided += g.decision == rule_decision::differentiated;
    } else {
        ++s.voided;
    }
}

double quantile_of(std::vector<double> v, double q) {
    if (v.empty())
        return 0.0;
    std::sort(v.begin(), v.end());
    const double at = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(at);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

void print(const char* rule, const char* path, bool throttled, const series& s) {
    if (s.values.empty()) {
        std::printf("| %s | %s | - | - | - | - | %d | %d |\n", rule, path, s.voided, s.decided);
        return;
    }
    // Neutral: how close the worst tests come to the threshold from below. Throttled: how
    // close the weakest come from above.
    if (!throttled) {
        std::printf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %d | %d |\n", rule, path,
                    quantile_of(s.values, 0.5), quantile_of(s.values, 0.99),
                    quantile_of(s.values, 0.999),
                    *std::max_element(s.values.begin(), s.values.end()), s.voided, s.decided);
    } else {
        std::printf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %d | %d |\n", rule, path,
                    quantile_of(s.values, 0.5), quantile_of(s.values, 0.01),
                    quantile_of(s.values, 0.001),
                    *std::min_element(s.values.begin(), s.values.end()), s.voided, s.decided);
    }
}

} // namespace

int main(int argc, char** argv) {
    const int trials = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1000;
    const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
    const auto reps = static_cast<std::uint32_t>(argc > 3 ? std::max(1, std::atoi(argv[3])) : 2);
    const double flow_s = argc > 4 ? std::max(0.4, std::atof(argv[4])) : 2.5;
    const auto rerun_reps =
        static_cast<std::uint32_t>(argc > 5 ? std::max(1, std::atoi(argv[5])) : reps);
    const synthetic::test_config test{synthetic::schedule::sequential, reps, flow_s, 0.2};
    const synthetic::test_config rerun{synthetic::schedule::sequential, rerun_reps, flow_s, 0.2};
    const analysis_settings settings;
    std::printf("%d trials per path, seed %llu, %u repetitions of %.1f s flows (the rerun: %u); "
                "thresholds: "
                "relative difference %.2f, Wehe area %.2f (%.2f above %.0f Mbit/s) with KS p < "
                "%.2f\n\n",
                trials, static_cast<unsigned long long>(seed), reps, flow_s, rerun_reps,
                settings.glasnost_difference_min, settings.wehe_area_min,
                settings.wehe_area_min_fast, settings.wehe_fast_bps / 1e6, settings.wehe_ks_alpha);
    std::printf("| rule | path | median | neutral p99 / throttled p1 | p99.9 / p0.1 | max / min | "
                "void | differentiated |\n|---|---|---|---|---|---|---|---|\n");
    std::uint64_t path_seed = seed;
    std::vector<std::string> verdict_rows;
    for (const path_row& row : paths()) {
        synthetic::rng random(path_seed++ * 0x9e3779b97f4a7c15ull);
        series peak, late, glasnost, wehe;
        struct {
            int accused = 0, inconclusive = 0, right = 0;
        } combined;
        for (int i = 0; i < trials; ++i) {
            const auto flows = synthetic::run_test(row.path, test, random);
            const auto a = analyse(flows, settings);
            if (!a || a->verdicts.empty()) {
                std::fprintf(stderr, "analysis failed on %s\n", row.name);
                return 1;
            }
            // The combined verdict, confirmed as the node confirms it (one rerun when the first
            // run is positive or inconclusive).
            test_analysis final_result = *a;
            if (needs_confirmation(*a)) {
                const auto again = analyse(synthetic::run_test(row.path, rerun, random), settings);
                if (!again) {
                    std::fprintf(stderr, "analysis failed on %s\n", row.name);
                    return 1;
                }
                final_result = merge_rerun(*a, *again);
            }
            bool accused = false, unsure = false, right = true;
            for (const port_verdict& v : final_result.verdicts) {
                accused |= v.outcome == verdict::throttled || v.outcome == verdict::blocked ||
                           v.outcome == verdict::reset_injected;
                unsure |= v.outcome == verdict::inconclusive;
                right &= row.throttled ? v.outcome == verdict::throttled && v.why == basis::content
                                       : v.outcome == verdict::none;
            }
            combined.accused += accused;
            combined.inconclusive += !accused && unsure;
            combined.right += right;
            const comparison& c = a->verdicts.front().content;
            add(peak, c.peak);
            add(late, c.late);
            add(glasnost, c.glasnost);
            if (c.wehe.decision == rule_decision::not_applicable) {
                ++wehe.voided;
            } else {
                wehe.values.push_back(c.wehe.signed_area);
                wehe.decided += c.wehe.decision == rule_decision::differentiated;
            }
        }
        print("peak", row.name, row.throttled, peak);
        print("late", row.name, row.throttled, late);
        print("glasnost", row.name, row.throttled, glasnost);
        print("wehe (area)", row.name, row.throttled, wehe);
        verdict_rows.push_back(
            std::string("| ") + row.name + " | " + std::to_string(combined.accused) + " | " +
            std::to_string(combined.inconclusive) + " | " + std::to_string(combined.right) + " |");
    }
    std::printf("\nCombined verdict after the confirmation rerun, tests of %d (both ports):\n\n"
                "| path | accused (throttled, blocked or reset-injected on a port) | "
                "inconclusive (nothing accused) | right (none everywhere, or throttled/content "
                "on both ports) |\n|---|---|---|---|\n",
                trials);
    for (const std::string& r : verdict_rows)
        std::printf("%s\n", r.c_str());
    return 0;
}
