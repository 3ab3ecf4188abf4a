// libFuzzer target for the verdict analysis (tests_proto/analysis/verdict.hpp) on arbitrary
// flow records, as a report file or a peer's collect can carry them.
//
// Input: byte 0 picks the settings and whether the flow list is inflated past max_flows; then
// one record per flow (see read_flow). Numbers are mostly built from small integers so that
// flows relate to each other the way real ones do (throttled, silent, bursty), and sometimes
// taken as raw IEEE doubles so that NaN, infinities and negatives arrive too.
//
// analyse() must never crash, and must
// - fail exactly when the contract says: errc::limit_exceeded past max_flows flows or
//   max_samples_per_flow samples, errc::invalid_argument for a non-finite or negative
//   throughput, interval or sample; succeed otherwise;
// - on success return one verdict per (direction, port) present, in the documented order,
//   whose outcome, basis, forged-reset flag and port comparison follow the combination rules
//   of the header, with every figure finite, the same result when run again, and a merge with
//   itself that confirms every verdict.
// Any violation aborts.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "tests_proto/analysis/verdict.hpp"

using namespace glasnode;
using namespace glasnode::proto;

namespace {

void require(bool condition) {
    if (!condition)
        std::abort();
}

constexpr flow_end all_ends[] = {
    flow_end::completed,        flow_end::reset_received, flow_end::eof_early,
    flow_end::stalled,          flow_end::connect_failed, flow_end::connect_timeout,
    flow_end::handshake_failed, flow_end::refused,        flow_end::error,
    flow_end::not_run};

// Flow record: flags (dir, port, kind, concurrent, sender resets, receiver resets, raw
// doubles, oversized), group, repetition, end, mean, interval, sample count, samples, resets.
flow_record read_flow(fuzz::fuzz_input& r, bool& oversized_used) {
    const std::uint8_t flags = r.u8();
    const bool raw = (flags & 0x40) != 0;
    flow_record f;
    f.dir = (flags & 1) != 0 ? direction::upload : direction::download;
    f.port = (flags & 2) != 0 ? test_port::neutral : test_port::bt;
    f.kind = (flags & 4) != 0 ? flow_kind::control : flow_kind::bt;
    const std::uint8_t group = r.u8();
    if ((flags & 8) != 0)
        f.concurrent_group = group % 8;
    f.repetition = r.u8() % 4;
    f.end = all_ends[r.u8() % std::size(all_ends)];
    f.mean_bps = raw ? r.raw_double() : r.u16() * 1e3;
    f.interval_s = raw ? r.raw_double() : (1 + r.u8()) * 0.005;
    const std::size_t n = r.u8();
    if ((flags & 0x80) != 0 && !raw && !oversized_used) {
        // Past the bound: must be refused before any rule sees it. One such flow per input
        // is enough and keeps memory small.
        oversized_used = true;
        f.interval_bps.assign(max_samples_per_flow + 1 + n, f.mean_bps);
    } else {
        // Samples relative to the mean (as a real flow's scatter around it), or raw.
        for (std::size_t i = 0; i < n && !r.done(); ++i)
            f.interval_bps.push_back(raw ? r.raw_double() : f.mean_bps * r.u8() / 128.0);
    }
    if ((flags & 0x10) != 0)
        f.sender_resets = reset_report{static_cast<std::uint32_t>(r.u8() % 4),
                                       static_cast<std::uint32_t>(r.u8() % 4)};
    if ((flags & 0x20) != 0)
        f.receiver_resets = reset_report{static_cast<std::uint32_t>(r.u8() % 4),
                                         static_cast<std::uint32_t>(r.u8() % 4)};
    return f;
}

// As verdict.hpp states it: a rate is 0 or within [min_positive_rate_bps, max_input_rate_bps].
bool valid_rate(double v) {
    return std::isfinite(v) &&
           (v == 0.0 || (v >= min_positive_rate_bps && v <= max_input_rate_bps));
}

// The reset rule restated from the header: a received reset the other end did not send.
bool forged(const flow_record& f) {
    return f.sender_resets && f.receiver_resets &&
           (f.receiver_resets->received > f.sender_resets->sent ||
            f.sender_resets->received > f.receiver_resets->sent);
}

bool positive(verdict v) {
    return v == verdict::throttled || v == verdict::blocked;
}

int severity(verdict v) {
    switch (v) {
    case verdict::none:
        return 0;
    case verdict::inconclusive:
        return 1;
    case verdict::throttled:
        return 2;
    case verdict::blocked:
        return 3;
    case verdict::reset_injected:
        return 4;
    }
    std::abort();
}

bool known(verdict v) {
    return v == verdict::none || v == verdict::throttled || v == verdict::blocked ||
           v == verdict::reset_injected || v == verdict::inconclusive;
}

bool known(basis b) {
    return b == basis::none || b == basis::content || b == basis::port;
}

bool known(rule_decision d) {
    return d == rule_decision::not_applicable || d == rule_decision::none ||
           d == rule_decision::differentiated || d == rule_decision::inconclusive;
}

void check_finite(std::initializer_list<double> values) {
    for (double v : values)
        require(std::isfinite(v));
}

void check_comparison(const comparison& c, std::size_t test_flows, std::size_t reference_flows) {
    // A comparison is a statistical judgement: proof of a forged reset is the port's business.
    require(c.outcome == verdict::none || c.outcome == verdict::throttled ||
            c.outcome == verdict::blocked || c.outcome == verdict::inconclusive);
    require(c.test_flows == test_flows && c.reference_flows == reference_flows);
    require(c.test_failed <= c.test_flows && c.reference_failed <= c.reference_flows);
    if (test_flows == 0 || reference_flows == 0)
        require(c.outcome == verdict::inconclusive);
    if (c.outcome == verdict::blocked)
        require(c.test_failed > 0 && c.reference_failed == 0 && 2 * c.test_failed >= c.test_flows);
    if (c.test_failed > 0 || c.reference_failed > 0)
        require(c.outcome == verdict::blocked || c.outcome == verdict::inconclusive);
    for (const glasnost_outcome* g : {&c.glasnost, &c.peak}) {
        require(known(g->decision));
        check_finite({g->test_max_bps, g->reference_max_bps, g->test_noise, g->reference_noise,
                      g->relative_difference});
    }
    require(known(c.wehe.decision));
    check_finite({c.wehe.area, c.wehe.signed_area, c.wehe.area_threshold, c.wehe.ks_statistic,
                  c.wehe.ks_p, c.wehe.test_mean_bps, c.wehe.reference_mean_bps});
    require(c.wehe.area >= 0.0 && c.wehe.ks_p >= 0.0 && c.wehe.ks_p <= 1.0);
    require(known(c.paired.decision));
    check_finite({c.paired.ratio, c.paired.ratio_low, c.paired.ratio_high, c.paired.clear_low,
                  c.paired.p_value, c.paired.effective_intervals});
    require(c.paired.p_value >= 0.0 && c.paired.p_value <= 1.0);
    require(c.paired.pairs_below <= c.paired.pairs);
}

// Bitwise-equal figures and decisions: the analysis is a pure function.
bool same(const port_verdict& a, const port_verdict& b) {
    return a.dir == b.dir && a.port == b.port && a.outcome == b.outcome && a.why == b.why &&
           a.forged_reset == b.forged_reset && a.content.outcome == b.content.outcome &&
           a.port_comparison.has_value() == b.port_comparison.has_value() &&
           (!a.port_comparison || a.port_comparison->outcome == b.port_comparison->outcome) &&
           std::memcmp(&a.bt_mbps, &b.bt_mbps, sizeof(double)) == 0 &&
           std::memcmp(&a.control_mbps, &b.control_mbps, sizeof(double)) == 0 &&
           std::memcmp(&a.ratio, &b.ratio, sizeof(double)) == 0 &&
           std::memcmp(&a.ks_p, &b.ks_p, sizeof(double)) == 0 &&
           std::memcmp(&a.area, &b.area, sizeof(double)) == 0;
}

void check_verdicts(const std::vector<flow_record>& flows, const test_analysis& a,
                    const analysis_settings& settings) {
    std::size_t next = 0;
    for (direction dir : {direction::download, direction::upload}) {
        for (test_port port : {test_port::bt, test_port::neutral}) {
            std::size_t bt_here = 0, control_here = 0, control_neutral = 0;
            bool present = false, forged_here = false;
            for (const flow_record& f : flows) {
                if (f.dir != dir)
                    continue;
                if (f.port == port) {
                    present = true;
                    ++(f.kind == flow_kind::bt ? bt_here : control_here);
                    forged_here |= forged(f);
                }
                if (f.port == test_port::neutral && f.kind == flow_kind::control)
                    ++control_neutral;
            }
            if (!present)
                continue;
            require(next < a.verdicts.size());
            const port_verdict& v = a.verdicts[next++];
            require(v.dir == dir && v.port == port);
            require(known(v.outcome) && known(v.why));
            require(v.runs == 1 && !v.confirmed);
            check_finite({v.bt_mbps, v.control_mbps, v.ratio, v.ks_p, v.area});
            check_comparison(v.content, bt_here, control_here);
            const bool has_port = port == test_port::bt && control_neutral > 0;
            require(v.port_comparison.has_value() == has_port);
            if (v.port_comparison)
                check_comparison(*v.port_comparison, control_here, control_neutral);

            require(v.forged_reset == forged_here);
            require((v.outcome == verdict::reset_injected) == forged_here);
            if (!forged_here) {
                const verdict content = v.content.outcome;
                if (v.port_comparison && positive(v.port_comparison->outcome)) {
                    require(v.outcome == v.port_comparison->outcome && v.why == basis::port);
                } else if (v.port_comparison &&
                           severity(v.port_comparison->outcome) > severity(content)) {
                    require(v.outcome == v.port_comparison->outcome && v.why == basis::none);
                } else {
                    require(v.outcome == content);
                    require(v.why == (positive(content) ? basis::content : basis::none));
                }
            }
            require(needs_confirmation(v) ==
                    (positive(v.outcome) || v.outcome == verdict::inconclusive));
        }
    }
    require(next == a.verdicts.size());

    auto again = analyse(flows, settings);
    require(again.ok() && again->verdicts.size() == a.verdicts.size());
    for (std::size_t i = 0; i < a.verdicts.size(); ++i)
        require(same(a.verdicts[i], again->verdicts[i]));

    // A rerun that agrees in every respect confirms every verdict and asks for nothing more.
    const test_analysis merged = merge_rerun(a, *again);
    require(merged.verdicts.size() == a.verdicts.size());
    for (std::size_t i = 0; i < a.verdicts.size(); ++i) {
        const port_verdict& m = merged.verdicts[i];
        require(m.outcome == a.verdicts[i].outcome && m.why == a.verdicts[i].why);
        require(m.confirmed && m.runs == 2 && !needs_confirmation(m));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    fuzz::fuzz_input r(byte_view(data, size));
    const std::uint8_t control = r.u8();
    analysis_settings settings;
    if ((control & 1) != 0) {
        // Fewer pairs and a small exact-KS budget reach the paired rule and the asymptotic
        // KS path with small inputs.
        settings.paired_min_pairs = 1;
        settings.paired_min_intervals = 4;
        settings.ks_exact_max_cells = 64;
    }
    std::vector<flow_record> flows;
    bool oversized_used = false;
    while (!r.done() && flows.size() < 64)
        flows.push_back(read_flow(r, oversized_used));
    if ((control & 2) != 0 && !flows.empty()) {
        // Past max_flows by copies of the last flow: must be refused as too many.
        flow_record last = flows.back();
        last.interval_bps.resize(std::min<std::size_t>(last.interval_bps.size(), 256));
        flows.resize(max_flows + 1 + control % 4, last);
    }

    bool too_big = flows.size() > max_flows;
    bool malformed = false;
    for (const flow_record& f : flows) {
        too_big |= f.interval_bps.size() > max_samples_per_flow;
        malformed |= !valid_rate(f.mean_bps) || !std::isfinite(f.interval_s) ||
                     f.interval_s < 0.0 || f.interval_s > max_interval_s;
        for (double s : f.interval_bps)
            malformed |= !valid_rate(s);
    }

    const auto result = analyse(flows, settings);
    if (!too_big && !malformed) {
        require(result.ok());
        check_verdicts(flows, *result, settings);
        return 0;
    }
    require(!result.ok());
    const errc code = result.err().code;
    require((too_big && code == errc::limit_exceeded) ||
            (malformed && code == errc::invalid_argument));
    require(!result.err().reason.empty());
    return 0;
}
