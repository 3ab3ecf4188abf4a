// False-positive and detection rates of each rule and of the combined verdict on seeded
// synthetic paths (tests/tests_proto/analysis/synthetic_paths.hpp): a neutral path that is
// clean, has 1% random loss, or carries bursty on/off cross traffic, and paths that cap
// BitTorrent payload at 60%, 40% or 10% of a 40 Mbit/s link (clean and under cross traffic).
// Each schedule prints its table; the assertions pin the properties the design relies on.
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/tests_proto/analysis/synthetic_paths.hpp"
#include "tests_proto/analysis/verdict.hpp"

namespace glasnode::proto {
namespace {

using synthetic::path_config;
using synthetic::schedule;
using synthetic::test_config;

constexpr int trials = 100;

struct scenario {
    const char* name;
    path_config path;
    bool throttled;
};

std::vector<scenario> scenarios() {
    path_config clean;
    path_config lossy = clean;
    lossy.random_loss = 0.01;
    path_config bursty = clean;
    bursty.cross_mean_on_s = 1.5;
    bursty.cross_mean_off_s = 1.5;
    auto capped = [](path_config p, double cap) {
        p.bt_cap = cap;
        return p;
    };
    return {
        {"clean", clean, false},
        {"loss 1%", lossy, false},
        {"bursty on/off", bursty, false},
        {"cap 60%", capped(clean, 0.6), true},
        {"cap 40%", capped(clean, 0.4), true},
        {"cap 10%", capped(clean, 0.1), true},
        {"bursty + cap 40%", capped(bursty, 0.4), true},
        {"bursty + cap 10%", capped(bursty, 0.1), true},
    };
}

struct tally {
    int glasnost_diff = 0;
    int glasnost_invalid = 0;
    int wehe_diff = 0;
    int paired_diff = 0;
    int paired_inconclusive = 0;
    int combined_positive = 0;
    int combined_inconclusive = 0;
    int rerun_positive = 0;
    int rerun_inconclusive = 0;
    int reruns = 0;
};

bool positive(const test_analysis& a) {
    for (const port_verdict& v : a.verdicts) {
        if (v.outcome == verdict::throttled || v.outcome == verdict::blocked) {
            return true;
        }
    }
    return false;
}

bool inconclusive(const test_analysis& a) {
    for (const port_verdict& v : a.verdicts) {
        if (v.outcome == verdict::inconclusive) {
            return true;
        }
    }
    return false;
}

double percent(int count) {
    return 100.0 * count / trials;
}

tally measure(const scenario& s, const test_config& test, std::uint64_t seed) {
    synthetic::rng random(seed);
    tally t;
    for (int i = 0; i < trials; ++i) {
        const std::vector<flow_record> flows = synthetic::run_test(s.path, test, random);
        auto first = analyse(flows);
        EXPECT_TRUE(first.ok());
        if (!first.ok()) {
            return t;
        }
        const comparison& c = first->verdicts.front().content; // download, BT port
        t.glasnost_diff += c.glasnost.decision == rule_decision::differentiated;
        t.glasnost_invalid += c.glasnost.decision == rule_decision::inconclusive;
        t.wehe_diff += c.wehe.decision == rule_decision::differentiated;
        t.paired_diff += c.paired.decision == rule_decision::differentiated;
        t.paired_inconclusive += c.paired.decision == rule_decision::inconclusive;
        const bool pos = positive(*first);
        t.combined_positive += pos;
        t.combined_inconclusive += !pos && inconclusive(*first);

        test_analysis final_result = *first;
        if (needs_confirmation(*first)) {
            ++t.reruns;
            auto rerun = analyse(synthetic::run_test(s.path, test, random));
            EXPECT_TRUE(rerun.ok());
            if (rerun.ok()) {
                final_result = merge_rerun(*first, *rerun);
            }
        }
        const bool final_pos = positive(final_result);
        t.rerun_positive += final_pos;
        t.rerun_inconclusive += !final_pos && inconclusive(final_result);
    }
    return t;
}

std::vector<tally> run_schedule(const char* title, const test_config& test) {
    std::printf("\n%s: %d tests per row, download, 40 Mbit/s, %u reps x %.0f s flows\n", title,
                trials, test.repetitions, test.flow_s);
    std::printf("%-18s %9s %9s %6s %9s %9s %7s %11s %11s\n", "path", "glasnost", "g-invalid",
                "wehe", "paired", "p-incon", "comb+", "comb-incon", "rerun+/inc");
    std::vector<tally> out;
    std::uint64_t seed = 1;
    for (const scenario& s : scenarios()) {
        const tally t = measure(s, test, seed++);
        std::printf(
            "%-18s %8.0f%% %8.0f%% %5.0f%% %8.0f%% %8.0f%% %6.0f%% %10.0f%% %5.0f%%/%3.0f%%\n",
            s.name, percent(t.glasnost_diff), percent(t.glasnost_invalid), percent(t.wehe_diff),
            percent(t.paired_diff), percent(t.paired_inconclusive), percent(t.combined_positive),
            percent(t.combined_inconclusive), percent(t.rerun_positive),
            percent(t.rerun_inconclusive));
        out.push_back(t);
    }
    std::fflush(stdout);
    return out;
}

// Index of the rows in scenarios().
enum row { clean, lossy, bursty, cap60, cap40, cap10, bursty_cap40, bursty_cap10 };

TEST(SyntheticRates, Sequential) {
    const auto t = run_schedule("sequential (published schedule)",
                                test_config{schedule::sequential, 3, 5.0, 0.05});
    for (row r : {clean, lossy}) {
        EXPECT_EQ(t[r].rerun_positive, 0) << r;
    }
    for (row r : {cap60, cap40, cap10}) {
        EXPECT_GE(t[r].rerun_positive, trials * 9 / 10) << r;
    }
}

TEST(SyntheticRates, Concurrent) {
    const auto t =
        run_schedule("concurrent pairs", test_config{schedule::concurrent, 3, 5.0, 0.05});
    for (row r : {clean, lossy, bursty}) {
        EXPECT_EQ(t[r].paired_diff, 0) << r;
        EXPECT_EQ(t[r].rerun_positive, 0) << r;
    }
    for (row r : {cap40, cap10, bursty_cap10}) {
        EXPECT_GE(t[r].rerun_positive, trials * 9 / 10) << r;
    }
    // A cap above the fair share of two flows is invisible to concurrent flows.
    EXPECT_LE(t[cap60].paired_diff, trials / 10);
}

TEST(SyntheticRates, Mixed) {
    const auto t =
        run_schedule("mixed (sequential + concurrent)", test_config{schedule::mixed, 2, 5.0, 0.05});
    for (row r : {clean, lossy, bursty}) {
        EXPECT_EQ(t[r].rerun_positive, 0) << r;
    }
    for (row r : {cap40, cap10, bursty_cap10}) {
        EXPECT_GE(t[r].rerun_positive, trials * 9 / 10) << r;
    }
}

} // namespace
} // namespace glasnode::proto
