#include "tests_proto/analysis/verdict.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "tests_proto/analysis/statistics.hpp"

namespace glasnode::proto {

std::string_view to_string(verdict v) noexcept {
    switch (v) {
    case verdict::none:
        return "none";
    case verdict::throttled:
        return "throttled";
    case verdict::blocked:
        return "blocked";
    case verdict::reset_injected:
        return "reset-injected";
    case verdict::inconclusive:
        return "inconclusive";
    }
    return "inconclusive";
}

std::string_view to_string(basis b) noexcept {
    switch (b) {
    case basis::none:
        return "none";
    case basis::content:
        return "content";
    case basis::port:
        return "port";
    case basis::endpoint:
        return "endpoint";
    }
    return "none";
}

std::optional<verdict> parse_verdict(std::string_view text) noexcept {
    for (verdict v : {verdict::none, verdict::throttled, verdict::blocked, verdict::reset_injected,
                      verdict::inconclusive}) {
        if (to_string(v) == text) {
            return v;
        }
    }
    return std::nullopt;
}

std::optional<basis> parse_basis(std::string_view text) noexcept {
    for (basis b : {basis::none, basis::content, basis::port, basis::endpoint}) {
        if (to_string(b) == text) {
            return b;
        }
    }
    return std::nullopt;
}

bool has_forged_reset(const flow_record& flow) noexcept {
    if (!flow.sender_resets || !flow.receiver_resets) {
        return false;
    }
    return flow.receiver_resets->received > flow.sender_resets->sent ||
           flow.sender_resets->received > flow.receiver_resets->sent;
}

namespace {

using flow_list = std::vector<const flow_record*>;

// A rate a flow can have: 0, or between min_positive_rate_bps and max_input_rate_bps.
bool plausible_rate(double v) {
    return std::isfinite(v) &&
           (v == 0.0 || (v >= min_positive_rate_bps && v <= max_input_rate_bps));
}

bool plausible_interval(double v) {
    return std::isfinite(v) && v >= 0.0 && v <= max_interval_s;
}

} // namespace

status check_flow_figures(const flow_record& f) {
    if (!plausible_rate(f.mean_bps) || !plausible_interval(f.interval_s))
        return make_error(errc::invalid_argument, "has a throughput or interval that is negative, "
                                                  "non-finite or outside what a flow can have");
    for (double s : f.interval_bps) {
        if (!plausible_rate(s))
            return make_error(errc::invalid_argument,
                              "has an interval sample that is negative, non-finite or outside "
                              "what a flow can have");
    }
    return {};
}

namespace {

status validate(std::span<const flow_record> flows) {
    if (flows.size() > max_flows) {
        return make_error(errc::limit_exceeded, "differential test has " +
                                                    std::to_string(flows.size()) +
                                                    " flows, limit " + std::to_string(max_flows));
    }
    for (std::size_t i = 0; i < flows.size(); ++i) {
        const flow_record& f = flows[i];
        if (f.interval_bps.size() > max_samples_per_flow) {
            return make_error(errc::limit_exceeded, "flow " + std::to_string(i) + " has " +
                                                        std::to_string(f.interval_bps.size()) +
                                                        " samples, limit " +
                                                        std::to_string(max_samples_per_flow));
        }
        if (auto st = check_flow_figures(f); !st)
            return make_error(st.err().code, "flow " + std::to_string(i) + " " + st.err().reason);
    }
    return {};
}

int severity(verdict v) {
    switch (v) {
    case verdict::reset_injected:
        return 4;
    case verdict::blocked:
        return 3;
    case verdict::throttled:
        return 2;
    case verdict::inconclusive:
        return 1;
    case verdict::none:
        return 0;
    }
    return 1;
}

// The rules on the pooled flows. The peak rule leads: a throttle holds in every interval,
// cross traffic does not. It accuses only with a rule on whole flows agreeing (Glasnost on the
// means or Wehe on the distributions). A throttle that spares the start of every connection
// (delayed) hides from the peaks; the late rule sees it, and counts only when every test flow
// shows the cut itself and a whole-flow rule agrees (it never makes a verdict inconclusive:
// on synthetic on/off cross traffic that would have added 7 inconclusive tests in 100, while
// a real delayed throttle lowers the flows' means too). Otherwise the peak rule clears
// unless both whole-flow rules accuse. Without a peak verdict (too few flows, or peaks too
// scattered) Glasnost and Wehe must agree.
verdict combine_pooled(rule_decision peak, rule_decision late, bool cut_in_every_test_flow,
                       bool policed, rule_decision glasnost, rule_decision wehe) {
    const bool both =
        glasnost == rule_decision::differentiated && wehe == rule_decision::differentiated;
    const bool whole =
        glasnost == rule_decision::differentiated || wehe == rule_decision::differentiated;
    if (peak == rule_decision::differentiated) {
        return whole ? verdict::throttled : verdict::inconclusive;
    }
    if (late == rule_decision::differentiated && cut_in_every_test_flow && whole) {
        return verdict::throttled;
    }
    if (policed && whole) {
        return verdict::throttled;
    }
    if (peak == rule_decision::none) {
        return both ? verdict::inconclusive : verdict::none;
    }
    if (both) {
        return verdict::throttled;
    }
    if (glasnost == rule_decision::none && wehe == rule_decision::none) {
        return verdict::none;
    }
    return verdict::inconclusive;
}

// The split of one flow's intervals with the largest weighted drop in mean rate (a one-change
// CUSUM statistic): the first interval of the lower part, or nullopt without a drop.
std::optional<std::size_t> change_point(std::span<const double> x) {
    const std::size_t n = x.size();
    double total = 0.0;
    for (double v : x) {
        total += v;
    }
    double before = 0.0;
    double best = 0.0;
    std::optional<std::size_t> at;
    for (std::size_t k = 1; k < n; ++k) {
        before += x[k - 1];
        const double kd = static_cast<double>(k);
        const double rest = static_cast<double>(n - k);
        const double drop = before / kd - (total - before) / rest;
        const double score = drop * std::sqrt(kd * rest / static_cast<double>(n));
        if (score > best) {
            best = score;
            at = k;
        }
    }
    return at;
}

double bytes_before(const flow_record& f, std::size_t k) {
    double bits = 0.0;
    for (std::size_t i = 0; i < k && i < f.interval_bps.size(); ++i) {
        bits += f.interval_bps[i] * f.interval_s;
    }
    return bits / 8.0;
}

// The late and early rules of a comparison (rules.hpp), and whether every test flow shows the
// cut. Each test flow is split at its own change point; the reference flows at the median of
// those (the same stretch of their windows). The cut counts only when every test flow's late
// peak is below (1 - glasnost_difference_min) x its early peak and their change points fall at
// payload byte counts within a factor late_onset_spread of each other: a throttle triggered by a
// byte count cuts every connection at the same count, cross traffic at random places. Not
// applicable unless every split leaves late_min_intervals intervals on both sides. Returns where
// the test flows were split (throttle_onset: medians over them), or nullopt when not applicable.
std::optional<throttle_onset> judge_late(comparison& c, const flow_list& test,
                                         const flow_list& reference,
                                         const analysis_settings& settings) {
    if (test.empty() || reference.empty()) {
        return std::nullopt;
    }
    std::vector<std::size_t> splits;
    std::vector<double> onset_bytes;
    std::vector<double> onset_seconds;
    for (const flow_record* f : test) {
        const std::optional<std::size_t> k = change_point(f->interval_bps);
        const std::size_t n = f->interval_bps.size();
        // The interval at the change point may hold the cut itself (part fast, part slow): the
        // late part starts after it.
        if (!k || *k < settings.late_min_intervals || n - *k < settings.late_min_intervals + 1) {
            return std::nullopt; // not applicable: decisions stay not_applicable
        }
        splits.push_back(*k);
        onset_bytes.push_back(bytes_before(*f, *k));
        onset_seconds.push_back(static_cast<double>(*k) * f->interval_s);
    }
    std::vector<double> split_values(splits.begin(), splits.end());
    const auto reference_split = static_cast<std::size_t>(std::lround(median(split_values)));

    std::vector<double> late_test, late_reference, early_test, early_reference;
    bool every_cut = true;
    for (std::size_t i = 0; i < test.size(); ++i) {
        const std::span<const double> all(test[i]->interval_bps);
        const double e = quantile(all.first(splits[i]), settings.peak_quantile);
        const double l = quantile(all.subspan(splits[i] + 1), settings.peak_quantile);
        early_test.push_back(e);
        late_test.push_back(l);
        every_cut = every_cut && l < (1.0 - settings.glasnost_difference_min) * e;
    }
    for (const flow_record* f : reference) {
        const std::span<const double> all(f->interval_bps);
        const std::size_t n = all.size();
        if (n < 2 * settings.late_min_intervals + 1) {
            return std::nullopt;
        }
        const std::size_t k = std::clamp(reference_split, settings.late_min_intervals,
                                         n - settings.late_min_intervals - 1);
        early_reference.push_back(quantile(all.first(k), settings.peak_quantile));
        late_reference.push_back(quantile(all.subspan(k + 1), settings.peak_quantile));
    }
    const auto [lo, hi] = std::minmax_element(onset_bytes.begin(), onset_bytes.end());
    const bool consistent = *lo > 0.0 && *hi <= settings.late_onset_spread * *lo;
    c.late = glasnost_rule(late_test, late_reference, settings);
    c.early = glasnost_rule(early_test, early_reference, settings);
    c.cut_in_every_test_flow = every_cut && consistent;
    return throttle_onset{median(onset_seconds), median(onset_bytes), test.size()};
}

// The policing signature of the test flows against the reference flows (policing_signature),
// or nullopt when a flow's retransmissions are unknown or the mark is not there.
std::optional<policing_signature> find_policing(const flow_list& test, const flow_list& reference,
                                                const analysis_settings& settings) {
    if (test.empty() || reference.empty()) {
        return std::nullopt;
    }
    policing_signature p;
    p.test_min = 1e300;
    for (const flow_record* f : test) {
        if (!f->retransmit_fraction) {
            return std::nullopt;
        }
        p.test_min = std::min(p.test_min, *f->retransmit_fraction);
    }
    for (const flow_record* f : reference) {
        if (!f->retransmit_fraction) {
            return std::nullopt;
        }
        p.reference_max = std::max(p.reference_max, *f->retransmit_fraction);
    }
    if (p.test_min >= settings.policing_loss_min &&
        p.test_min >= settings.policing_loss_ratio * p.reference_max) {
        return p;
    }
    return std::nullopt;
}

// Throughput rules on flows that all carried data.
void judge_throughput(comparison& c, const flow_list& test, const flow_list& reference,
                      const analysis_settings& settings) {
    auto select = [](const flow_list& in, bool concurrent) {
        flow_list out;
        for (const flow_record* f : in) {
            if (f->concurrent_group.has_value() == concurrent) {
                out.push_back(f);
            }
        }
        return out;
    };
    // The pooled rules compare like with like: sequential flows when both sides have them,
    // else concurrent ones (which ran at a share of the path), never one kind against the other.
    const flow_list seq_test = select(test, false);
    const flow_list seq_reference = select(reference, false);
    const bool pooled_on_sequential = !seq_test.empty() && !seq_reference.empty();
    const flow_list pool_test = pooled_on_sequential ? seq_test : select(test, true);
    const flow_list pool_reference = pooled_on_sequential ? seq_reference : select(reference, true);

    auto means = [](const flow_list& in) {
        std::vector<double> out;
        for (const flow_record* f : in) {
            out.push_back(f->mean_bps);
        }
        return out;
    };
    auto samples = [](const flow_list& in) {
        std::vector<double> out;
        for (const flow_record* f : in) {
            out.insert(out.end(), f->interval_bps.begin(), f->interval_bps.end());
        }
        return out;
    };
    auto peaks = [&](const flow_list& in) {
        std::vector<double> out;
        for (const flow_record* f : in) {
            out.push_back(quantile(f->interval_bps, settings.peak_quantile));
        }
        return out;
    };
    c.glasnost = glasnost_rule(means(pool_test), means(pool_reference), settings);
    c.wehe = wehe_rule(samples(pool_test), samples(pool_reference), settings);
    c.peak = glasnost_rule(peaks(pool_test), peaks(pool_reference), settings);
    const std::optional<throttle_onset> split = judge_late(c, pool_test, pool_reference, settings);

    // Pairs: the first test and the first reference flow of each concurrent group.
    std::map<std::uint32_t, std::pair<const flow_record*, const flow_record*>> groups;
    for (const flow_record* f : test) {
        if (f->concurrent_group) {
            auto& slot = groups[*f->concurrent_group];
            if (!slot.first) {
                slot.first = f;
            }
        }
    }
    for (const flow_record* f : reference) {
        if (f->concurrent_group) {
            auto& slot = groups[*f->concurrent_group];
            if (!slot.second) {
                slot.second = f;
            }
        }
    }
    std::vector<aligned_pair> pairs;
    for (const auto& [id, slot] : groups) {
        if (slot.first && slot.second) {
            pairs.push_back(aligned_pair{slot.first->interval_bps, slot.second->interval_bps});
        }
    }
    c.paired = paired_rule(pairs, settings);

    c.policing = find_policing(pool_test, pool_reference, settings);
    const verdict pooled =
        combine_pooled(c.peak.decision, c.late.decision, c.cut_in_every_test_flow,
                       c.policing.has_value(), c.glasnost.decision, c.wehe.decision);
    switch (c.paired.decision) {
    case rule_decision::differentiated:
        c.outcome = verdict::throttled;
        break;
    case rule_decision::none:
        c.outcome = pooled_on_sequential && pooled == verdict::throttled ? verdict::inconclusive
                                                                         : verdict::none;
        break;
    case rule_decision::inconclusive:
    case rule_decision::not_applicable:
        // Too few pairs to judge (one pair is one draw of two TCP flows' unfairness): the
        // sequential flows decide.
        c.outcome = pooled;
        break;
    }
    if (c.outcome == verdict::throttled && c.cut_in_every_test_flow &&
        c.early.decision != rule_decision::differentiated) {
        c.onset = split;
    }
}

comparison compare(const flow_list& test, const flow_list& reference, double direction_best_bps,
                   const analysis_settings& settings) {
    comparison c;
    c.test_flows = test.size();
    c.reference_flows = reference.size();
    if (test.empty() || reference.empty()) {
        c.outcome = verdict::inconclusive;
        return c;
    }
    const double silent_below = settings.silent_fraction * direction_best_bps;
    auto failed = [&](const flow_record* f) {
        return never_connected(f->end) || f->end == flow_end::stalled || f->mean_bps <= 0.0 ||
               f->mean_bps < silent_below;
    };
    flow_list healthy_test;
    flow_list healthy_reference;
    for (const flow_record* f : test) {
        if (failed(f)) {
            ++c.test_failed;
        } else {
            healthy_test.push_back(f);
        }
    }
    for (const flow_record* f : reference) {
        if (failed(f)) {
            ++c.reference_failed;
        } else {
            healthy_reference.push_back(f);
        }
    }
    judge_throughput(c, healthy_test, healthy_reference, settings);
    const bool mostly_failed =
        c.test_failed > 0 && static_cast<double>(c.test_failed) >=
                                 settings.blocked_min_fraction * static_cast<double>(test.size());
    if (mostly_failed && c.reference_failed == 0) {
        c.outcome = verdict::blocked;
    } else if (c.test_failed > 0 || c.reference_failed > 0) {
        c.outcome = verdict::inconclusive;
    }
    return c;
}

// One direction's clean references (its own and an earlier run's) and its later sequential
// control flows against them: the same for both ports of the direction, so judged once.
struct endpoint_evidence {
    flow_list clean_references;
    std::optional<comparison> later_controls;
};

double best_rate(direction dir, std::span<const flow_record> flows) {
    double best = 0.0;
    for (const flow_record& f : flows)
        if (f.dir == dir)
            best = std::max(best, f.mean_bps);
    return best;
}

endpoint_evidence judge_endpoint(direction dir, std::span<const flow_record> flows,
                                 std::span<const flow_record> earlier_references,
                                 const analysis_settings& settings) {
    endpoint_evidence e;
    flow_list later;
    for (const flow_record& f : earlier_references)
        if (f.dir == dir && f.kind == flow_kind::control)
            e.clean_references.push_back(&f);
    for (const flow_record& f : flows)
        if (f.dir == dir && f.kind == flow_kind::control && !f.concurrent_group)
            (f.clean_reference ? e.clean_references : later).push_back(&f);
    if (!e.clean_references.empty() && !later.empty())
        e.later_controls = compare(later, e.clean_references, best_rate(dir, flows), settings);
    return e;
}

port_verdict judge_port(direction dir, test_port port, std::span<const flow_record> flows,
                        const endpoint_evidence& endpoint, const analysis_settings& settings) {
    flow_list bt_here;
    flow_list control_here;
    flow_list control_neutral;
    bool forged_bt = false;
    bool forged_control = false;
    bool forged_neutral_control = false;
    const double best = best_rate(dir, flows);
    for (const flow_record& f : flows) {
        if (f.dir != dir) {
            continue;
        }
        const bool forged = has_forged_reset(f);
        if (f.port == port) {
            (f.kind == flow_kind::bt ? bt_here : control_here).push_back(&f);
            (f.kind == flow_kind::bt ? forged_bt : forged_control) |= forged;
        }
        if (f.port == test_port::neutral && f.kind == flow_kind::control) {
            control_neutral.push_back(&f);
            forged_neutral_control |= forged;
        }
    }

    port_verdict v;
    v.dir = dir;
    v.port = port;
    v.content = compare(bt_here, control_here, best, settings);
    if (port == test_port::bt && !control_neutral.empty()) {
        v.port_comparison = compare(control_here, control_neutral, best, settings);
    }
    std::optional<comparison> bt_against_references;
    v.endpoint_comparison = endpoint.later_controls;
    if (v.endpoint_comparison) {
        flow_list bt_sequential;
        for (const flow_record* f : bt_here)
            if (!f->concurrent_group)
                bt_sequential.push_back(f);
        bt_against_references = compare(bt_sequential, endpoint.clean_references, best, settings);
    }

    v.forged_reset = forged_bt || forged_control;
    if (v.forged_reset) {
        v.outcome = verdict::reset_injected;
        if (forged_control && port == test_port::bt && !forged_neutral_control) {
            v.why = basis::port;
        } else if (forged_bt && !forged_control) {
            v.why = basis::content;
        } else {
            v.why = basis::none;
        }
    } else {
        v.outcome = v.content.outcome;
        v.why = is_positive(v.outcome) ? basis::content : basis::none;
        // A penalised BT port explains its flows: BT and control then share one narrow class,
        // where a difference between them is TCP's unfairness at a trickle, not content.
        const bool port_penalised = v.port_comparison && is_positive(v.port_comparison->outcome);
        if (v.port_comparison &&
            (port_penalised || severity(v.port_comparison->outcome) > severity(v.outcome))) {
            v.outcome = v.port_comparison->outcome;
            v.why = is_positive(v.outcome) ? basis::port : basis::none;
        }
        // Neither accuses, yet the later controls and BT are both throttled against the clean
        // references: the path penalises whatever goes to an endpoint once it saw BitTorrent.
        if (!is_positive(v.outcome) && v.endpoint_comparison &&
            v.endpoint_comparison->outcome == verdict::throttled && bt_against_references &&
            bt_against_references->outcome == verdict::throttled) {
            v.outcome = verdict::throttled;
            v.why = basis::endpoint;
        }
    }

    const glasnost_outcome& g = v.content.glasnost;
    v.bt_mbps = g.test_max_bps / 1e6;
    v.control_mbps = g.reference_max_bps / 1e6;
    if (v.content.paired.decision != rule_decision::not_applicable &&
        v.content.paired.intervals > 0) {
        v.ratio = v.content.paired.ratio;
    } else if (g.reference_max_bps > 0.0) {
        v.ratio = g.test_max_bps / g.reference_max_bps;
    }
    v.ks_p = v.content.wehe.ks_p;
    v.area = v.content.wehe.area;
    if (v.outcome == verdict::throttled) {
        const comparison& deciding = v.why == basis::port && v.port_comparison ? *v.port_comparison
                                     : v.why == basis::endpoint && v.endpoint_comparison
                                         ? *v.endpoint_comparison
                                         : v.content;
        v.onset = deciding.onset;
        v.policing = deciding.policing;
    }
    return v;
}

} // namespace

result<test_analysis> analyse(std::span<const flow_record> flows,
                              const analysis_settings& settings) {
    return analyse(flows, {}, settings);
}

result<test_analysis> analyse(std::span<const flow_record> flows,
                              std::span<const flow_record> earlier_references,
                              const analysis_settings& settings) {
    if (status s = validate(flows); !s) {
        return s.err();
    }
    if (status s = validate(earlier_references); !s) {
        return s.err();
    }
    test_analysis out;
    for (direction dir : {direction::download, direction::upload}) {
        std::optional<endpoint_evidence> endpoint;
        for (test_port port : {test_port::bt, test_port::neutral}) {
            const bool present = std::any_of(flows.begin(), flows.end(), [&](const flow_record& f) {
                return f.dir == dir && f.port == port;
            });
            if (present) {
                if (!endpoint)
                    endpoint = judge_endpoint(dir, flows, earlier_references, settings);
                out.verdicts.push_back(judge_port(dir, port, flows, *endpoint, settings));
            }
        }
    }
    return out;
}

bool is_positive(verdict v) noexcept {
    return v == verdict::throttled || v == verdict::blocked;
}

bool needs_confirmation(const port_verdict& v) noexcept {
    return v.runs == 1 && (v.outcome == verdict::throttled || v.outcome == verdict::blocked ||
                           v.outcome == verdict::inconclusive);
}

bool needs_confirmation(const test_analysis& a) noexcept {
    return std::any_of(a.verdicts.begin(), a.verdicts.end(),
                       [](const port_verdict& v) { return needs_confirmation(v); });
}

namespace {

// What one comparison of a verdict concluded: content, or port (none when absent).
verdict comparison_outcome(const port_verdict& v, basis b) {
    if (b == basis::content)
        return v.content.outcome;
    if (b == basis::port && v.port_comparison)
        return v.port_comparison->outcome;
    if (b == basis::endpoint && v.endpoint_comparison)
        return v.endpoint_comparison->outcome;
    return verdict::none;
}

port_verdict merge_outcome(const port_verdict& first, const port_verdict& rerun) {
    port_verdict out = rerun;
    out.runs = first.runs + rerun.runs;
    out.confirmed = false;
    if (first.outcome == rerun.outcome && first.why == rerun.why) {
        out.confirmed = true;
        return out;
    }
    if (first.outcome == verdict::reset_injected || rerun.outcome == verdict::reset_injected) {
        const port_verdict& proof = first.outcome == verdict::reset_injected ? first : rerun;
        out.outcome = verdict::reset_injected;
        out.why = proof.why;
        out.forged_reset = true;
        return out;
    }
    if (is_positive(first.outcome) && is_positive(rerun.outcome) && first.why == rerun.why) {
        out.outcome = verdict::throttled;
        out.confirmed = true;
        return out;
    }
    // The runs may rank their two comparisons differently (on a port throttled to a trickle,
    // BT against control is noise) while the same comparison is positive in both: that
    // comparison is confirmed.
    for (const port_verdict* p : {&first, &rerun}) {
        const port_verdict& other = p == &first ? rerun : first;
        if (is_positive(p->outcome) && p->why != basis::none &&
            is_positive(comparison_outcome(other, p->why))) {
            out.outcome =
                comparison_outcome(other, p->why) == p->outcome ? p->outcome : verdict::throttled;
            out.why = p->why;
            out.confirmed = true;
            return out;
        }
    }
    if ((first.outcome == verdict::inconclusive && rerun.outcome == verdict::none) ||
        (first.outcome == verdict::none && rerun.outcome == verdict::inconclusive)) {
        out.outcome = verdict::none;
        out.why = basis::none;
        return out;
    }
    out.outcome = verdict::inconclusive;
    out.why = basis::none;
    return out;
}

} // namespace

port_verdict merge_rerun(const port_verdict& first, const port_verdict& rerun) {
    port_verdict out = merge_outcome(first, rerun);
    // A rerun without BitTorrent flows (a port verdict's: schedule.hpp controls_only) has no
    // content comparison of its own: the first run's stands, with its figures.
    if (rerun.content.test_flows == 0 && first.content.test_flows > 0) {
        out.content = first.content;
        out.bt_mbps = first.bt_mbps;
        out.control_mbps = first.control_mbps;
        out.ratio = first.ratio;
        out.ks_p = first.ks_p;
        out.area = first.area;
    }
    // An onset belongs to a throttled verdict: the rerun's figures, else the first run's.
    if (out.outcome != verdict::throttled) {
        out.onset.reset();
        out.policing.reset();
    } else if (first.outcome == verdict::throttled) {
        if (!out.onset)
            out.onset = first.onset;
        if (!out.policing)
            out.policing = first.policing;
    }
    return out;
}

test_analysis merge_rerun(const test_analysis& first, const test_analysis& rerun) {
    test_analysis out;
    for (const port_verdict& a : first.verdicts) {
        const auto match =
            std::find_if(rerun.verdicts.begin(), rerun.verdicts.end(),
                         [&](const port_verdict& b) { return b.dir == a.dir && b.port == a.port; });
        out.verdicts.push_back(match == rerun.verdicts.end() ? a : merge_rerun(a, *match));
    }
    for (const port_verdict& b : rerun.verdicts) {
        const bool seen =
            std::any_of(first.verdicts.begin(), first.verdicts.end(),
                        [&](const port_verdict& a) { return a.dir == b.dir && a.port == b.port; });
        if (!seen) {
            out.verdicts.push_back(b);
        }
    }
    return out;
}

} // namespace glasnode::proto
