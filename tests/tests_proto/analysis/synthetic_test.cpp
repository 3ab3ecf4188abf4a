// False-positive and detection rates of each rule and of the combined verdict on seeded
// synthetic paths (tests/tests_proto/analysis/synthetic_paths.hpp): a neutral path that is
// clean, has 1% random loss, or carries bursty on/off cross traffic, and paths that cap
// BitTorrent payload at 60%, 40% or 10% of a 40 Mbit/s link (clean and under cross traffic),
// from the first byte or only after a flow's first megabytes (delayed throttling).
// Each schedule prints its table; the assertions pin, per path and after the confirmation
// rerun, how often a neutral path is accused, how often a test stays inconclusive, and how
// often a cap is found as what it is (throttled, content-based, on both ports).
#include <algorithm>
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
    using synthetic::capped;
    return {
        {"clean", clean, false},
        {"loss 1%", lossy, false},
        {"bursty on/off", bursty, false},
        {"cap 60%", capped(clean, 0.6), true},
        {"cap 40%", capped(clean, 0.4), true},
        {"cap 10%", capped(clean, 0.1), true},
        {"bursty + cap 40%", capped(bursty, 0.4), true},
        {"bursty + cap 10%", capped(bursty, 0.1), true},
        // Delayed: full rate for the first bytes of each flow (5 MB = 1 s at 40 Mbit/s), then
        // the cap; the whole-flow peaks see only the unthrottled start.
        {"10% after 5 MB", capped(clean, 0.1, 5e6), true},
        {"40% after 8 MB", capped(clean, 0.4, 8e6), true},
        {"bursty + 10%/5 MB", capped(bursty, 0.1, 5e6), true},
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
    int rerun_positive = 0;     // after the rerun: some verdict accuses (throttled or blocked)
    int rerun_inconclusive = 0; // after the rerun: nothing accuses, some verdict inconclusive
    int rerun_throttled = 0;    // after the rerun: every verdict throttled on content
    int rerun_blocked = 0;      // after the rerun: some verdict blocked
    int rerun_wrong = 0;        // after the rerun: some verdict names another policy
    int reruns = 0;
    // After the rerun: the onset (payload bytes) of every throttled verdict that names one.
    std::vector<double> onset_bytes;
};

bool accuses(verdict v) {
    return v == verdict::throttled || v == verdict::blocked || v == verdict::reset_injected;
}

bool positive(const test_analysis& a) {
    for (const port_verdict& v : a.verdicts) {
        if (accuses(v.outcome)) {
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

// The one right verdict on a path that caps BitTorrent payload on any port: throttled on
// content, on both ports. A block or a port-based verdict names the wrong policy.
bool throttle_detected(const test_analysis& a) {
    if (a.verdicts.size() != 2) {
        return false;
    }
    for (const port_verdict& v : a.verdicts) {
        if (v.outcome != verdict::throttled || v.why != basis::content) {
            return false;
        }
    }
    return true;
}

// A verdict that accuses the path of something it does not do to a content cap: a block, a
// forged reset, or a port-based throttle.
bool wrong_policy(const test_analysis& a) {
    for (const port_verdict& v : a.verdicts) {
        if (v.outcome == verdict::blocked || v.outcome == verdict::reset_injected ||
            (v.outcome == verdict::throttled && v.why != basis::content)) {
            return true;
        }
    }
    return false;
}

bool blocked(const test_analysis& a) {
    for (const port_verdict& v : a.verdicts) {
        if (v.outcome == verdict::blocked) {
            return true;
        }
    }
    return false;
}

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0.0 : (n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0);
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
        // One download test: the BT port and the neutral port.
        EXPECT_EQ(first->verdicts.size(), 2u);
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
        t.rerun_throttled += throttle_detected(final_result);
        t.rerun_blocked += blocked(final_result);
        t.rerun_wrong += wrong_policy(final_result);
        for (const port_verdict& v : final_result.verdicts) {
            if (v.outcome == verdict::throttled && v.onset) {
                t.onset_bytes.push_back(v.onset->bytes);
            }
        }
    }
    return t;
}

std::vector<tally> run_schedule(const char* title, const test_config& test) {
    std::printf("\n%s: %d tests per row, download, 40 Mbit/s, %u reps x %.0f s flows\n", title,
                trials, test.repetitions, test.flow_s);
    std::printf("%-18s %9s %9s %6s %9s %9s %7s %11s %11s %9s %8s %6s\n", "path", "glasnost",
                "g-invalid", "wehe", "paired", "p-incon", "comb+", "comb-incon", "rerun+/inc",
                "throttled", "blocked", "wrong");
    std::vector<tally> out;
    std::uint64_t seed = 1;
    for (const scenario& s : scenarios()) {
        const tally t = measure(s, test, seed++);
        std::printf("%-18s %8.0f%% %8.0f%% %5.0f%% %8.0f%% %8.0f%% %6.0f%% %10.0f%% "
                    "%5.0f%%/%3.0f%% %8.0f%% %7.0f%% %5.0f%%\n",
                    s.name, percent(t.glasnost_diff), percent(t.glasnost_invalid),
                    percent(t.wehe_diff), percent(t.paired_diff), percent(t.paired_inconclusive),
                    percent(t.combined_positive), percent(t.combined_inconclusive),
                    percent(t.rerun_positive), percent(t.rerun_inconclusive),
                    percent(t.rerun_throttled), percent(t.rerun_blocked), percent(t.rerun_wrong));
        if (!t.onset_bytes.empty()) {
            std::printf("%-18s onset named in %zu verdicts, median %.2f MB\n", "",
                        t.onset_bytes.size(), median_of(t.onset_bytes) / 1e6);
        }
        out.push_back(t);
    }
    std::fflush(stdout);
    return out;
}

// Index of the rows in scenarios().
enum row {
    clean,
    lossy,
    bursty,
    cap60,
    cap40,
    cap10,
    bursty_cap40,
    bursty_cap10,
    delayed10,
    delayed40,
    bursty_delayed10
};

// What one row must show after the confirmation rerun, in tests out of `trials`. The bounds
// are the rates this test measures on its seeds (printed above each table; quoted in the
// comments of each TEST as measured) with a fixed margin, so that a change to the rules or
// the model that moves them beyond noise fails here:
// - false accusations (neutral rows: any accusing verdict; capped rows: a block, a forged
//   reset or a port-based throttle): measured + 1 test; on the clean and 1% loss paths none
//   at all, which the design requires;
// - inconclusive: measured + 5 tests;
// - detection (capped rows: throttled on content on both ports, the one right verdict):
//   measured - 5 tests.
struct expected_row {
    row r;
    int max_false;
    int max_inconclusive;
    int min_throttled; // -1 on neutral rows
};

void expect_rates(const std::vector<tally>& t, std::initializer_list<expected_row> rows) {
    ASSERT_EQ(t.size(), scenarios().size());
    for (const expected_row& e : rows) {
        const tally& x = t[e.r];
        const bool neutral = e.min_throttled < 0;
        SCOPED_TRACE(scenarios()[e.r].name);
        EXPECT_LE(neutral ? x.rerun_positive : x.rerun_wrong, e.max_false);
        EXPECT_LE(x.rerun_inconclusive, e.max_inconclusive);
        if (!neutral) {
            EXPECT_GE(x.rerun_throttled, e.min_throttled);
        } else {
            EXPECT_EQ(x.rerun_throttled, 0);
        }
    }
}

TEST(SyntheticRates, Sequential) {
    const auto t = run_schedule("sequential (published schedule)",
                                test_config{schedule::sequential, 3, 5.0, 0.05});
    // Measured (false / inconclusive / throttled): clean 0/0, loss 0/4, bursty 0/8, every
    // clean cap 0/0/100, bursty + cap 40% 0/1/85, bursty + cap 10% 0/1/85; delayed caps 0/0/100
    // (0/100/0 before the late rule), bursty + delayed 0/13/38 (87 of 100 accuse on at least one
    // port).
    expect_rates(t, {
                        {clean, 0, 5, -1},
                        {lossy, 0, 9, -1},
                        {bursty, 1, 12, -1},
                        {cap60, 1, 5, 95},
                        {cap40, 1, 5, 95},
                        {cap10, 1, 5, 95},
                        {bursty_cap40, 1, 6, 80},
                        {bursty_cap10, 1, 6, 80},
                        {delayed10, 1, 5, 95},
                        {delayed40, 1, 5, 95},
                        {bursty_delayed10, 1, 15, 28},
                    });
    // Where the delayed throttles began, as the report names it: the cap starts after 5 MB
    // and 8 MB of payload. Measured medians: 4.90 and 8.03 MB (the change point lands on an
    // interval boundary next to the cut).
    EXPECT_NEAR(median_of(t[delayed10].onset_bytes), 5e6, 0.5e6);
    EXPECT_NEAR(median_of(t[delayed40].onset_bytes), 8e6, 0.8e6);
    for (row r : {clean, lossy, bursty, cap40, cap10}) {
        EXPECT_TRUE(t[r].onset_bytes.empty()) << scenarios()[r].name;
    }
}

TEST(SyntheticRates, Concurrent) {
    const auto t =
        run_schedule("concurrent pairs", test_config{schedule::concurrent, 3, 5.0, 0.05});
    for (row r : {clean, lossy, bursty}) {
        EXPECT_EQ(t[r].paired_diff, 0) << r;
    }
    // A cap above the fair share of two flows is invisible to concurrent flows.
    EXPECT_LE(t[cap60].paired_diff, trials / 10);
    // Measured (false / inconclusive / throttled): clean 0/0, loss 0/1, bursty 0/1, cap 60%
    // 0/59/0 (see above), cap 40% and 10% 0/0/100, bursty + cap 40% 0/41/13, bursty + cap 10%
    // 0/0/99, 10% after 5 MB 0/0/100, 40% after 8 MB 0/27/17 and bursty + delayed 0/97/0
    // (concurrent pairs share the link, so a 40% cap after 8 MB is near their fair share: the
    // late rule on the pairs' flows sees it only at times).
    expect_rates(t, {
                        {clean, 0, 5, -1},
                        {lossy, 0, 6, -1},
                        {bursty, 1, 6, -1},
                        {cap60, 1, 64, 0}, // beyond what concurrent flows can see
                        {cap40, 1, 5, 95},
                        {cap10, 1, 5, 95},
                        {bursty_cap40, 1, 46, 8},
                        {bursty_cap10, 1, 5, 94},
                        {delayed10, 1, 5, 95},
                        {delayed40, 1, 32, 12},
                        {bursty_delayed10, 1, 100, 0},
                    });
}

TEST(SyntheticRates, Mixed) {
    const auto t =
        run_schedule("mixed (sequential + concurrent)", test_config{schedule::mixed, 2, 5.0, 0.05});
    // Measured (false / inconclusive / throttled): clean 0/0, loss 0/6, bursty 0/15 (12 before
    // the late rule: a first run it convicts that the rerun clears ends inconclusive), every
    // clean cap 0/0/100, bursty + cap 40% 0/2/64, bursty + cap 10% 0/4/73, delayed caps 0/0/100
    // (0/100/0 before the late rule), bursty + delayed 0/9/52.
    expect_rates(t, {
                        {clean, 0, 5, -1},
                        {lossy, 0, 10, -1},
                        {bursty, 1, 22, -1},
                        {cap60, 1, 5, 95},
                        {cap40, 1, 5, 95},
                        {cap10, 1, 5, 95},
                        {bursty_cap40, 1, 7, 59},
                        {bursty_cap10, 1, 9, 68},
                        {delayed10, 1, 5, 95},
                        {delayed40, 1, 5, 95},
                        {bursty_delayed10, 1, 17, 35},
                    });
}

} // namespace
} // namespace glasnode::proto
