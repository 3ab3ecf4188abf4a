// The three throughput comparison rules of the differential test, as pure functions. Each
// compares a "test" set of flows (the one suspected of being penalised: BT payload, or any
// payload on the BT port) with a "reference" set (control payload, or the neutral port) and
// answers none / differentiated / inconclusive. Differentiation is one-sided: only the test
// flows being SLOWER counts (a faster BT flow is reported in the figures, never as throttling).
//
// Contract: pure functions; inputs finite and >= 0 (verdict.hpp validates data that came from
// the network). Outputs are finite for every input, empty ones included. No allocation beyond
// copies of the inputs.
// Thread-safety: no shared state.
//
// Why each threshold is what it is (analysis_settings, one entry per threshold):
// - Glasnost (Dischinger et al., NSDI 2010): per flow kind the maximum of the repetitions'
//   mean throughputs, because cross traffic can only slow a flow down, so the best repetition
//   is the closest to what the path allows that kind of flow. Noise (max - median) / max above
//   20% means the repetitions disagree by as much as the effect we look for: the comparison is
//   void (inconclusive). Differentiation when (max_reference - max_test) / max_reference >
//   20%: the paper chose 20% for both thresholds as the trade-off between false positives
//   (about 4% on their data) and missed shaping; raising the difference threshold to 50% cuts
//   false positives further but misses mild throttling. With two repetitions the median is the
//   mean of the two, so noise = (max - min) / (2 max); with one, noise cannot be estimated and
//   the rule is inconclusive.
// - Wehe (Kakhki et al., IMC 2015; Li et al., SIGCOMM 2019): area between the two throughput
//   CDFs divided by the smaller of the two maximum interval throughputs (the x-range both
//   CDFs share; the Wehe analysis code normalises by min(max1, max2)), and a two-sample KS
//   test on the interval samples. KS alone flags differences too small to matter (on this
//   testbed it had p < 0.01 in 35-75% of clean tests), so differentiation needs BOTH a large
//   area (>= 0.5, i.e. the CDFs are apart by half the shared range on average) and p < 0.01.
//   Above 10 Mbit/s the design (after Wehe) lowers the area threshold to 0.3: fast flows
//   have a wide sample range from the sawtooth alone, so the same throttle yields a smaller
//   relative area there.
// - Peak (this project; Glasnost's reasoning at the scale of one interval): per flow the
//   peak_quantile (0.9) of its interval throughputs, then Glasnost's rule on those peaks
//   instead of on the flows' means. Cross traffic that comes and goes only slows a flow while
//   it is on, so the busiest intervals of a flow show what the path allowed it in the gaps;
//   a throttle holds in every interval. On this testbed's on/off cross traffic the flows'
//   means scattered from 21 to 41 Mbit/s on a 50 Mbit/s path while their peaks stayed within
//   2% of 48; a cap at 40% kept BT's peaks at 19.3 against control's 48. The 0.9 quantile
//   rather than the maximum: one interval can exceed the path rate by the jitter of when bytes
//   reach the receiver. The same 20% thresholds as Glasnost, with the noise check on the
//   peaks: a flow that met cross traffic through all its busiest tenth stands out and voids
//   the comparison instead of deciding it.
// - Late (this project, for Wehe's delayed throttling, SIGCOMM 2019: full rate for a
//   connection's first bytes, then a cut): the peak rule on the intervals after each test
//   flow's change point (the split with the largest drop in mean rate), against the reference
//   flows' intervals after the median of those points. A flow's busiest intervals are its
//   unthrottled start there, so the whole-flow peak cannot see the cut; the late peaks can. The
//   same 20% thresholds and noise check as the peak rule. verdict.hpp accepts it only with a
//   cut inside every test flow (its late peak 20% below its own early peak), the cuts at byte
//   counts within late_onset_spread (x1.5) of each other, and a whole-flow rule agreeing:
//   cross traffic that happens to cover the end of a flow lowers its late peak too, but at a
//   random place, while a delayed throttle cuts every connection at the same byte count. It sees
//   a throttle that begins with at least late_min_intervals intervals left in the flow.
// - Paired (concurrent flows): the BT and control flows of a pair run at the same time
//   through the same bottleneck, so bursty cross traffic slows both alike and cancels in the
//   per-interval ratio BT/control. The rule estimates the median of log(BT/control) over
//   intervals with a distribution-free confidence interval from order statistics (sign-test
//   inversion). Consecutive intervals are correlated (TCP sawtooth, cross-traffic bursts
//   spanning many intervals), so the interval count is replaced by an effective count
//   n / (1 + 2 sum of the initial positive autocorrelations of the sign sequence), which
//   widens the interval exactly when the samples are not independent. Threshold 0.8: the
//   same 20% relative difference as Glasnost, so the rules agree on what "throttled" means.
//   Throttled when the 99% interval (Wehe's alpha = 0.01) lies wholly below 0.8; none when
//   the 90% interval lies wholly above it; inconclusive otherwise. The asymmetry is deliberate:
//   a false accusation is the costly error, while a missed mild throttle is not (and a throttle
//   well below 0.8 never reaches "none"); on clean synthetic paths 90% instead of 99% cut the
//   rule's inconclusives from 53% to 16% without any false positive. With several pairs a
//   majority of the pairs must agree, so one pair hit by a transient lasting its whole length (a
//   route change) cannot decide alone. Only the busiest half of each pair's intervals (largest BT +
//   control rate) is judged: under neutrality the two flows are exchangeable, so their log ratio is
//   symmetric around 0 whatever their sum and the selection adds no bias, while a cap binds
//   exactly when the path has room above it -- under on/off cross traffic this raised the
//   rule's detection of a 40% cap from 7% to 38% with no false positive (synthetic paths). Two
//   concurrent TCP flows share a bottleneck about equally, so a cap above the fair share (e.g. 60%
//   of the link for two flows) is invisible to this rule: the sequential rules are what detects it.
//   The flow engine should randomise which flow of a pair starts first, or the exchangeability the
//   rule relies on is lost. Measured on this testbed (50 Mbit/s, FIFO queue of ~240 ms): two of our
//   flows started together stay unfair for whole seconds -- one pair's median ratio is one draw of
//   that unfairness, seen from 0.38 to 1.79 on neutral paths, as low as a 40% cap (0.67). The
//   interval-level confidence cannot see this between-pair spread, so the rule decides only with
//   at least paired_min_pairs pairs, a majority of which must agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace glasnode::proto {

// Every tunable of the analysis, with its default. See the header comment for the reasons.
struct analysis_settings {
    double glasnost_noise_max = 0.2;       // (max - median) / max above this: comparison void
    double glasnost_difference_min = 0.2;  // relative difference above this: differentiation
    double wehe_area_min = 0.5;            // normalised CDF area at or above this ...
    double wehe_area_min_fast = 0.3;       // ... or this when the faster kind is above:
    double wehe_fast_bps = 10e6;           // 10 Mbit/s
    double wehe_ks_alpha = 0.01;           // and KS p-value below this
    double paired_ratio_threshold = 0.8;   // BT/control below this is throttling
    double paired_confidence = 0.99;       // two-sided confidence of the ratio interval
    double paired_clear_confidence = 0.9;  // two-sided confidence for a "none"
    std::size_t paired_min_intervals = 20; // fewer usable aligned intervals: inconclusive
    double paired_busiest_fraction = 0.5;  // share of each pair's intervals judged, busiest first
    std::size_t paired_min_pairs = 3;      // fewer pairs: the paired rule is inconclusive
    double peak_quantile = 0.9;            // a flow's peak: this quantile of its intervals
    // The late rule: the peak of each flow's intervals after its change point (a delayed
    // throttle spares a connection's first bytes, so only the rest of a flow shows it). Fewer
    // than late_min_intervals intervals on either side of it: the rule does not apply. The test
    // flows' change points must fall at byte counts within this factor of each other.
    std::size_t late_min_intervals = 3;
    double late_onset_spread = 1.5;
    // Policing signature (verdict.hpp): every test flow retransmitted at least this fraction of
    // its segments ... On the emulated ISP, random loss of 1-5% gave both kinds the same
    // fraction (test/reference ratio 0.9-1.1, at most 0.058), on/off cross traffic and every other
    // neutral path none; policers at 2 and 5 Mbit/s 5.5-37% against 0 for control.
    double policing_loss_min = 0.03;
    // ... and at least this many times the largest fraction among the reference flows.
    double policing_loss_ratio = 3.0;
    // A flow that carried less than this fraction of the best flow of its direction carried
    // "nothing" (blocked-looking). 1%: far below any throttle worth reporting as throttling,
    // far above the bytes of a handshake that got through before a block.
    double silent_fraction = 0.01;
    // At least this fraction of the test flows silent or unable to connect, with every
    // reference flow healthy: blocked. One failure in three could be the path; two cannot.
    double blocked_min_fraction = 0.5;
    std::uint64_t ks_exact_max_cells = 4'000'000; // see statistics.hpp
};

enum class rule_decision : std::uint8_t {
    not_applicable, // the rule had no data of the shape it needs (e.g. no concurrent pairs)
    none,           // no differentiation
    differentiated, // test flows slower beyond the threshold
    inconclusive,   // too noisy or too few data to decide
};
std::string_view to_string(rule_decision d) noexcept;

struct glasnost_outcome {
    rule_decision decision = rule_decision::not_applicable;
    double test_max_bps = 0.0;
    double reference_max_bps = 0.0;
    double test_noise = 0.0;
    double reference_noise = 0.0;
    // (reference_max - test_max) / reference_max; negative when the test kind was faster.
    double relative_difference = 0.0;
    std::size_t test_count = 0;
    std::size_t reference_count = 0;
};
// test_means / reference_means: one mean throughput (bit/s) per repetition.
glasnost_outcome glasnost_rule(std::span<const double> test_means,
                               std::span<const double> reference_means,
                               const analysis_settings& settings);

struct wehe_outcome {
    rule_decision decision = rule_decision::not_applicable;
    double area = 0.0;        // Wehe's |area| / min(max_test, max_reference), >= 0
    double signed_area = 0.0; // same normalisation, positive when the test flows were slower
    double area_threshold = 0.0;
    double ks_statistic = 0.0;
    double ks_p = 1.0;
    bool ks_exact = false;
    double test_mean_bps = 0.0;
    double reference_mean_bps = 0.0;
    std::size_t test_samples = 0;
    std::size_t reference_samples = 0;
};
// Interval samples (bit/s) of all test flows pooled, and of all reference flows pooled.
wehe_outcome wehe_rule(std::span<const double> test_samples,
                       std::span<const double> reference_samples,
                       const analysis_settings& settings);

// Interval samples of two flows that ran at the same time: test[k] and reference[k] cover
// the same wall-clock interval. Lengths may differ; the common prefix is used.
struct aligned_pair {
    std::span<const double> test;
    std::span<const double> reference;
};

struct paired_outcome {
    rule_decision decision = rule_decision::not_applicable;
    double ratio = 1.0;     // estimated median of test/reference over intervals
    double ratio_low = 0.0; // confidence interval of that median
    double ratio_high = 0.0;
    // Lower bound at paired_clear_confidence, the one a "none" decision needs above threshold.
    double clear_low = 0.0;
    // One-sided sign-test p-value of "the median ratio is at least the threshold" (small:
    // evidence of throttling), using the effective interval count.
    double p_value = 1.0;
    std::size_t intervals = 0;        // usable aligned intervals, all pairs
    double effective_intervals = 0.0; // after the serial-correlation correction
    std::size_t pairs = 0;
    std::size_t pairs_below = 0; // pairs whose own median ratio is below the threshold
};
paired_outcome paired_rule(std::span<const aligned_pair> pairs, const analysis_settings& settings);

} // namespace glasnode::proto
