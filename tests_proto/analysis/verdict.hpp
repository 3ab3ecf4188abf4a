// Verdicts of the differential test: from the measured flows of one test (both ends'
// reports merged by the caller) to one verdict per direction and port.
//
// Inputs. For each direction (upload, download) and port (BT, neutral) there are flows of kind
// BT and control. A flow carries its mean throughput, the receiver's interval samples, how it
// ended, the resets each end reports having sent and received, its repetition index, and --
// when it ran at the same time as other flows -- a concurrent group id. Any schedule works:
//   sequential: no group ids; the pooled rules (Glasnost, Wehe) judge the flows;
//   concurrent: flows sharing a group id ran together with intervals aligned (sample k of
//     each covers the same wall-clock interval); the paired rule judges the pairs;
//   mixed: the pooled rules use the sequential flows, the paired rule the concurrent ones.
//
// Verdict per (direction, port) with a basis:
//   content: the BT payload is penalised relative to the control payload on the same port;
//   port:    any payload is penalised on the BT port relative to the neutral port (control on
//            the BT port against control on the neutral port);
//   endpoint: any payload is penalised on an endpoint once BitTorrent was seen there (a
//            classifier that remembers endpoints): the direction's later control flows are
//            throttled against its clean references (control flows that ran before any BT flow
//            to their port) and so are the BT flows, while BT and the later controls measure
//            alike. Decides only when neither the content nor the port comparison accuses;
//            a confirmation rerun, which has no clean reference of its own, is judged against
//            the first run's;
//   none:    no differentiation, or an effect that cannot be attributed (e.g. a forged reset
//            on the neutral control flow).
// Severity: reset-injected > blocked > throttled > inconclusive > none. On the BT port a
// positive port comparison decides (basis port): BT and control then share one narrow class,
// where a difference between them is TCP's unfairness at a trickle, not content. Otherwise the
// more severe comparison decides, content on a tie (both comparisons stay in the result).
// - reset-injected: an end received more resets than the other end reports having sent. Both
//   ends are ours, so such a reset was forged on the path. This is proof, not statistics.
// - blocked: at least half of the test flows could not connect, stalled, or carried almost
//   nothing while every reference flow was healthy.
// - throttled / none / inconclusive: the rules of rules.hpp, combined as follows. Pooled
//   (peak, late, Glasnost and Wehe on the same flows): the peak rule leads -- throttled when it
//   says differentiated and Glasnost or Wehe agree, inconclusive when neither does. When it does
//   not accuse, the late rule may: differentiated with a cut inside every test flow and
//   Glasnost or Wehe agreeing is a delayed throttle (throttled, with its onset). So may a
//   policing signature (policing_signature) with Glasnost or Wehe agreeing: a policer passes
//   bursts at full rate, so peaks miss it, while its drops make the flows retransmit many
//   times more than the reference flows. Otherwise a
//   peak none stands unless Glasnost and Wehe both accuse (then inconclusive). Without a peak
//   decision Glasnost and Wehe must agree: throttled when both accuse, none when both clear. With
//   at least paired_min_pairs concurrent pairs the paired rule leads: throttled when it says so;
//   none when it says none unless the sequential flows of a mixed schedule say throttled (a
//   cap above the fair share, which concurrent flows cannot see) -- then inconclusive; with
//   fewer pairs, or when it cannot decide, the pooled verdict stands.
// A positive (throttled, blocked) or inconclusive verdict asks for one confirmation rerun
// (Wehe's practice); merge_rerun combines the two runs. reset-injected needs no rerun: the
// counters of the two ends already prove it.
//
// Errors: analyse() returns errc::invalid_argument for non-finite or negative throughputs, and
// for rates or intervals outside what a flow can have (min_positive_rate_bps, max_input_rate_bps,
// max_interval_s), and
// errc::limit_exceeded above max_flows / max_samples_per_flow. Network failures are data (flow
// ends, resets), never errors.
// Thread-safety: pure functions, no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "storage/result.hpp"
#include "tests_proto/analysis/rules.hpp"
#include "tests_proto/flow_types.hpp"

namespace glasnode::proto {

// Resets one end counted on the flow's connection.
struct reset_report {
    std::uint32_t sent = 0;
    std::uint32_t received = 0;
};

struct flow_record {
    direction dir = direction::download;
    test_port port = test_port::bt;
    flow_kind kind = flow_kind::bt;
    std::uint32_t repetition = 0;
    // Flows with the same id ran at the same time, their interval samples aligned.
    std::optional<std::uint32_t> concurrent_group;
    double mean_bps = 0.0;   // payload bytes * 8 / flow duration, measured at the receiver
    double interval_s = 0.0; // length of one interval sample
    std::vector<double> interval_bps;
    flow_end end = flow_end::completed;
    // As reported by the end that sent the payload and by the end that received it; absent
    // when that end's report is missing (then no reset can be proven forged).
    std::optional<reset_report> sender_resets;
    std::optional<reset_report> receiver_resets;
    // The sender's retransmitted segments per 1448-byte payload segment it delivered (TCP_INFO
    // total retransmits x 1448 / payload bytes); absent when unknown or nothing was delivered.
    std::optional<double> retransmit_fraction;
    // A control flow that ran before any BitTorrent flow to its port in this test (the
    // schedule's references): a classifier that remembers endpoints had not seen BitTorrent
    // there yet.
    bool clean_reference = false;
};

inline constexpr std::size_t max_flows = 1024;
// What a flow's figures can be: a rate is 0 or within [1e-4 bit/s, 1 Pbit/s] (one byte in a
// day's interval to far beyond any link), an interval at most 10^4 s. Within these, no sum,
// product or ratio of the analysis leaves the double's range (fuzz_analysis found the ones
// that did at the ends of it).
inline constexpr double min_positive_rate_bps = 1e-4;
inline constexpr double max_input_rate_bps = 1e15;
inline constexpr double max_interval_s = 1e4;

// errc::invalid_argument (reason "has ...") when the flow's rates or interval are outside the
// above; what analyse() checks of each flow, for readers that take flows from files.
status check_flow_figures(const flow_record& f);

enum class verdict : std::uint8_t { none, throttled, blocked, reset_injected, inconclusive };
enum class basis : std::uint8_t { none, content, port, endpoint };

// "none", "throttled", "blocked", "reset-injected", "inconclusive"; "none", "content", "port",
// "endpoint".
std::string_view to_string(verdict v) noexcept;
std::string_view to_string(basis b) noexcept;
std::optional<verdict> parse_verdict(std::string_view text) noexcept;
std::optional<basis> parse_basis(std::string_view text) noexcept;

// True when a reset was received that the other end reports not having sent.
bool has_forged_reset(const flow_record& flow) noexcept;

// Where a throttle that spared the start of each test flow began: the median over the test
// flows of each one's change point (the split of its intervals with the largest drop in mean
// rate, weighted by sqrt(k (n - k) / n)), in seconds into the measurement window and in payload
// bytes the receiver had counted by then.
struct throttle_onset {
    double seconds = 0.0;
    double bytes = 0.0;
    std::size_t flows = 0; // test flows the median was taken over
};

// A policer's mark on the test flows (Flach et al., SIGCOMM 2016: policed flows lose several
// times more packets): every test flow retransmitted at least policing_loss_min of its
// segments and at least policing_loss_ratio times as much as the worst reference flow.
struct policing_signature {
    double test_min = 0.0;      // the smallest retransmit fraction among the test flows
    double reference_max = 0.0; // the largest among the reference flows
};

// One comparison of test flows against reference flows (content: BT vs control on a port;
// port: control on the BT port vs control on the neutral port).
struct comparison {
    verdict outcome = verdict::inconclusive; // none, throttled, blocked or inconclusive
    glasnost_outcome glasnost;
    glasnost_outcome peak; // Glasnost's rule on each flow's peak_quantile interval rate
    // The same on each flow's last late_fraction of intervals, and on the part before it.
    glasnost_outcome late;
    glasnost_outcome early;
    // Every test flow's late peak is below (1 - glasnost_difference_min) x its early peak.
    bool cut_in_every_test_flow = false;
    // Set when the outcome is throttled, every test flow shows the cut and their early peaks
    // were not differentiated from the reference's: a delayed throttle.
    std::optional<throttle_onset> onset;
    // Set when the test flows bear a policer's mark (whatever the outcome).
    std::optional<policing_signature> policing;
    wehe_outcome wehe;
    paired_outcome paired;
    std::size_t test_flows = 0;
    std::size_t reference_flows = 0;
    std::size_t test_failed = 0; // could not connect, stalled or silent
    std::size_t reference_failed = 0;
};

struct port_verdict {
    direction dir = direction::download;
    test_port port = test_port::bt;
    verdict outcome = verdict::inconclusive;
    basis why = basis::none;
    // Content comparison figures, for display: Glasnost's max of repetition means (Mbit/s),
    // the BT/control ratio (paired estimate when pairs exist, else of the two maxima), and
    // Wehe's KS p-value and normalised area.
    double bt_mbps = 0.0;
    double control_mbps = 0.0;
    double ratio = 1.0;
    double ks_p = 1.0;
    double area = 0.0;
    comparison content;
    std::optional<comparison> port_comparison; // only on the BT port
    // The direction's later control flows against its clean references (both ports pooled):
    // present when the run has both, or when an earlier run's references were given.
    std::optional<comparison> endpoint_comparison;
    bool forged_reset = false;
    // The deciding comparison's onset of a delayed throttle (throttled verdicts only).
    std::optional<throttle_onset> onset;
    // The deciding comparison's policing signature (throttled verdicts only).
    std::optional<policing_signature> policing;
    bool confirmed = false; // a rerun agreed (set by merge_rerun)
    std::uint32_t runs = 1;
    // Confirmed by the rerun of this port's comparison on the other port of its direction, not
    // by a rerun of its own (pooled confirmation, tests_proto/diff/test_data.hpp).
    std::optional<test_port> confirmed_by;
};

struct test_analysis {
    // One entry per (direction, port) present in the input, ordered download before upload,
    // BT port before neutral.
    std::vector<port_verdict> verdicts;
};

result<test_analysis> analyse(std::span<const flow_record> flows,
                              const analysis_settings& settings = {});
// The same, with the clean references of an earlier run of the test (a confirmation rerun has
// none of its own: BitTorrent was seen on every port before it), for the endpoint comparison.
result<test_analysis> analyse(std::span<const flow_record> flows,
                              std::span<const flow_record> earlier_references,
                              const analysis_settings& settings = {});

// True for the accusations a rerun must confirm: throttled and blocked.
bool is_positive(verdict v) noexcept;

// True for throttled, blocked and inconclusive verdicts of a first run.
bool needs_confirmation(const port_verdict& v) noexcept;
bool needs_confirmation(const test_analysis& a) noexcept;

// Combines a first run with its confirmation rerun (same direction and port):
//   same verdict and basis        -> that verdict, confirmed, the rerun's figures;
//   either run reset-injected     -> reset-injected (proof stands on its own);
//   both throttled/blocked        -> throttled if they differ in kind (both show at least
//                                    a throttle) with the same basis;
//   a positive verdict whose own comparison (content or port) is positive in the other run
//                                 -> that verdict and basis, confirmed (each run may rank
//                                    its two comparisons differently);
//   one positive, other none      -> inconclusive (one run cannot accuse nor clear);
//   one inconclusive, other none  -> none (the clean run decides, the other was noise);
//   inconclusive and positive     -> inconclusive;
//   otherwise                     -> inconclusive.
// A rerun without BT flows (a port verdict's rerun of control flows only) keeps the first run's
// content comparison and its figures.
port_verdict merge_rerun(const port_verdict& first, const port_verdict& rerun);
// Applies the above per (direction, port); entries only in one run are kept as they are.
test_analysis merge_rerun(const test_analysis& first, const test_analysis& rerun);

} // namespace glasnode::proto
