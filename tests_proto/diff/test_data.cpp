#include "tests_proto/diff/test_data.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <tuple>
#include <utility>

namespace glasnode::proto::diff {

const flow_measurement& measured_flow::receiver() const {
    return agent.role == flow_role::leech ? agent : provider;
}

const flow_measurement& measured_flow::sender() const {
    return agent.role == flow_role::leech ? provider : agent;
}

double measured_flow::mbps() const {
    return window_rate_bps(receiver()) / 1e6;
}

std::vector<measured_flow> match_measurements(std::span<const flow_spec> schedule,
                                              std::span<const flow_measurement> agent,
                                              std::span<const flow_measurement> provider) {
    std::map<std::uint16_t, const flow_measurement*> by_agent, by_provider;
    for (const auto& m : agent)
        by_agent[m.index] = &m;
    for (const auto& m : provider)
        by_provider[m.index] = &m;
    std::map<std::pair<std::uint16_t, direction>, std::size_t> group_size;
    for (const auto& s : schedule)
        ++group_size[{s.group, s.dir}];

    std::map<std::tuple<direction, test_port, flow_kind, bool>, std::uint32_t> seen;
    std::vector<measured_flow> out;
    out.reserve(schedule.size());
    for (const auto& s : schedule) {
        measured_flow f;
        f.spec = s;
        f.concurrent = group_size[{s.group, s.dir}] > 1;
        f.repetition = seen[{s.dir, s.port, s.kind, f.concurrent}]++;
        auto fill = [&](const std::map<std::uint16_t, const flow_measurement*>& from,
                        flow_measurement& to, flow_role role) {
            if (auto it = from.find(s.index); it != from.end()) {
                to = *it->second;
            } else {
                to.index = s.index;
                to.end = flow_end::not_run;
            }
            to.role = role;
        };
        fill(by_agent, f.agent, agent_role(s.dir));
        fill(by_provider, f.provider, provider_role(s.dir));
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<flow_record>
to_flow_records(std::span<const measured_flow> flows,
                const std::optional<unidentified_connections>& unidentified, bool bt_seen_earlier) {
    const bool provider_sent_no_reset = unidentified && unidentified->could_reset_peer == 0;
    // The first slot (group) in which a BT flow went to each port; a flow that never ran on
    // either end showed a classifier nothing.
    std::map<test_port, std::uint16_t> first_bt_group;
    for (const measured_flow& f : flows) {
        if (f.spec.kind != flow_kind::bt ||
            (f.agent.end == flow_end::not_run && f.provider.end == flow_end::not_run))
            continue;
        auto [it, fresh] = first_bt_group.try_emplace(f.spec.port, f.spec.group);
        if (!fresh)
            it->second = std::min(it->second, f.spec.group);
    }
    auto clean = [&](const measured_flow& f) {
        if (bt_seen_earlier || f.spec.kind != flow_kind::control)
            return false;
        const auto it = first_bt_group.find(f.spec.port);
        return it == first_bt_group.end() || f.spec.group < it->second;
    };
    std::vector<flow_record> out;
    out.reserve(flows.size());
    for (const measured_flow& f : flows) {
        const flow_measurement& rx = f.receiver();
        const flow_measurement& tx = f.sender();
        flow_record r;
        r.dir = f.spec.dir;
        r.port = f.spec.port;
        r.kind = f.spec.kind;
        r.repetition = f.repetition;
        r.clean_reference = clean(f);
        if (f.concurrent)
            r.concurrent_group = f.spec.group;
        r.mean_bps = f.mbps() * 1e6;
        r.interval_s = static_cast<double>(rx.sample_interval_us) / 1e6;
        if (r.interval_s > 0) {
            r.interval_bps.reserve(rx.samples.size());
            for (std::uint64_t b : rx.samples)
                r.interval_bps.push_back(static_cast<double>(b) * 8.0 / r.interval_s);
        }
        // The receiver's account of how the flow ended, unless it never ran there: then the
        // sender's (a connect that failed is seen by the agent, whatever its role).
        r.end = rx.end != flow_end::not_run ? rx.end : tx.end;
        if (f.agent.end == flow_end::connect_failed || f.agent.end == flow_end::connect_timeout)
            r.end = f.agent.end;
        if (rx.end != flow_end::not_run)
            r.receiver_resets = reset_report{rx.resets_sent, rx.resets_received};
        if (tx.end != flow_end::not_run)
            r.sender_resets = reset_report{tx.resets_sent, tx.resets_received};
        // Retransmitted segments per payload segment the receiver counted in its window, as the
        // sender's kernel counted them (1448 bytes: the MSS of an Ethernet path with
        // timestamps). The window's bytes, not payload_bytes: a report read back from JSON
        // keeps only the samples, and its analysis must be the same.
        std::uint64_t delivered = 0;
        for (std::uint64_t b : rx.samples)
            delivered += b;
        if (tx.end != flow_end::not_run && delivered > 0)
            r.retransmit_fraction =
                static_cast<double>(tx.retransmits) * 1448.0 / static_cast<double>(delivered);
        if (provider_sent_no_reset && f.provider.end == flow_end::not_run &&
            f.agent.end != flow_end::not_run) {
            (&f.provider == &rx ? r.receiver_resets : r.sender_resets) = reset_report{0, 0};
        }
        out.push_back(std::move(r));
    }
    return out;
}

namespace {

// Upload flows of a test whose paired uploads were paced (paired_upload_pace_bps) are compared
// at that pace: the flows that ran before the pairing (the clean references among them) ran
// unpaced and faster, and compared as they are with the paced ones they would look like a
// throttle of everything after them. Clipped at the pace, a neutral path's unpaced flow measures
// what a paced one does (at or a little below it: paced flows measured 1-5% above their pace),
// and a throttle below the pace shows in both.
void clip_uploads_to_pace(std::vector<flow_record>& records, std::uint64_t pace_bps) {
    if (pace_bps == 0)
        return;
    const double pace = static_cast<double>(pace_bps);
    for (flow_record& r : records) {
        if (r.dir != direction::upload)
            continue;
        r.mean_bps = std::min(r.mean_bps, pace);
        for (double& b : r.interval_bps)
            b = std::min(b, pace);
    }
}

} // namespace

status analyse_runs(test_data& data) {
    data.run_analyses.clear();
    // The first run's clean references judge the reruns' endpoint comparisons too.
    std::vector<flow_record> references;
    for (std::size_t i = 0; i < data.runs.size(); ++i) {
        const auto& run = data.runs[i];
        auto records = to_flow_records(
            run, i < data.unidentified.size() ? data.unidentified[i] : std::nullopt, i > 0);
        clip_uploads_to_pace(records, data.paired_upload_pace_bps);
        auto a = i == 0 ? analyse(records) : analyse(records, references);
        if (!a)
            return a.err();
        data.run_analyses.push_back(std::move(*a));
        if (i == 0)
            std::copy_if(records.begin(), records.end(), std::back_inserter(references),
                         [](const flow_record& r) { return r.clean_reference; });
    }
    if (data.run_analyses.empty())
        return make_error(errc::invalid_argument, "no run to analyse");
    data.analysis = data.run_analyses.front();
    for (std::size_t i = 1; i < data.run_analyses.size(); ++i) {
        test_analysis rerun = data.run_analyses[i];
        if (i - 1 < data.confirmed_keys.size()) {
            const auto& keys = data.confirmed_keys[i - 1];
            std::erase_if(rerun.verdicts, [&](const port_verdict& v) {
                return !holds(keys, {v.dir, v.port});
            });
        }
        data.analysis = merge_rerun(data.analysis, rerun);
        // A tie-break: merged with the positive one of the first two runs, not with their
        // inconclusive merge.
        if (i < 2 || data.confirmed_keys.empty())
            continue;
        for (const port_verdict& v : rerun.verdicts) {
            const comparison_key k{v.dir, v.port};
            if (!holds(data.confirmed_keys.front(), k))
                continue;
            const port_verdict* a = find_verdict(data.run_analyses[0], k);
            const port_verdict* b = find_verdict(data.run_analyses[1], k);
            const port_verdict* positive = a != nullptr && is_positive(a->outcome)   ? a
                                           : b != nullptr && is_positive(b->outcome) ? b
                                                                                     : nullptr;
            port_verdict* merged = find_verdict(data.analysis, k);
            if (positive == nullptr || merged == nullptr)
                continue;
            *merged = merge_rerun(*positive, v);
            merged->runs = static_cast<std::uint32_t>(i + 1);
        }
    }
    // Pooled comparisons, once their `by` was rerun (or given up: then they are unconfirmed too).
    const std::span<const comparison_key> rerun_keys =
        data.confirmed_keys.empty() || data.runs.size() < 2
            ? std::span<const comparison_key>{}
            : std::span<const comparison_key>{data.confirmed_keys.front()};
    std::vector<comparison_key> pooled_unconfirmed;
    for (const pooled_confirmation& p : data.pooled) {
        if (!holds(rerun_keys, p.by)) {
            if (holds(data.unconfirmed_keys, p.by))
                pooled_unconfirmed.push_back(p.pooled);
            continue;
        }
        const port_verdict* by = find_verdict(data.analysis, p.by);
        port_verdict* v = find_verdict(data.analysis, p.pooled);
        if (v == nullptr || !is_positive(v->outcome))
            continue;
        if (by != nullptr && by->confirmed && is_positive(by->outcome) && by->why == v->why) {
            if (v->outcome != by->outcome) {
                v->outcome = verdict::throttled; // both show at least a throttle
                v->onset.reset();
                v->policing.reset();
            }
            v->confirmed = true;
            v->confirmed_by = p.by.port;
        } else {
            pooled_unconfirmed.push_back(p.pooled);
        }
    }
    for (port_verdict& v : data.analysis.verdicts) {
        const comparison_key k{v.dir, v.port};
        if ((holds(pooled_unconfirmed, k) || holds(data.unconfirmed_keys, k)) &&
            is_positive(v.outcome)) {
            v.outcome = verdict::inconclusive;
            v.why = basis::none;
            v.onset.reset();
            v.policing.reset();
        }
    }
    return {};
}

void give_up_confirmation(test_data& data, const comparison_key& k) {
    data.unconfirmed_keys.push_back(k);
    std::erase_if(data.pooled, [&](const pooled_confirmation& p) {
        if (p.by != k)
            return false;
        data.unconfirmed_keys.push_back(p.pooled);
        return true;
    });
}

std::uint64_t agent_bytes(const test_data& data) noexcept {
    std::uint64_t bytes = 0;
    for (const auto& run : data.runs)
        for (const measured_flow& f : run)
            bytes += wire_bytes(f.agent);
    return bytes;
}

const port_verdict* find_verdict(const test_analysis& a, const comparison_key& k) noexcept {
    const auto it = std::find_if(a.verdicts.begin(), a.verdicts.end(), [&](const port_verdict& v) {
        return v.dir == k.dir && v.port == k.port;
    });
    return it == a.verdicts.end() ? nullptr : &*it;
}

port_verdict* find_verdict(test_analysis& a, const comparison_key& k) noexcept {
    return const_cast<port_verdict*>(find_verdict(std::as_const(a), k));
}

std::vector<pooled_confirmation> pool_confirmations(const test_analysis& first,
                                                    std::vector<comparison_key>& wanted) {
    auto find = [&](direction d, test_port port) -> const port_verdict* {
        return holds(wanted, {d, port}) ? find_verdict(first, {d, port}) : nullptr;
    };
    std::vector<pooled_confirmation> pooled;
    for (const direction d : {direction::download, direction::upload}) {
        const port_verdict* bt = find(d, test_port::bt);
        const port_verdict* neutral = find(d, test_port::neutral);
        if (bt == nullptr || neutral == nullptr || !is_positive(bt->outcome) ||
            !is_positive(neutral->outcome) || bt->why != neutral->why ||
            (bt->why != basis::content && bt->why != basis::endpoint))
            continue;
        pooled.push_back({{d, test_port::bt}, {d, test_port::neutral}});
        std::erase(wanted, comparison_key{d, test_port::bt});
    }
    return pooled;
}

std::vector<comparison_key> tie_breaks_wanted(const test_data& data) {
    std::vector<comparison_key> out;
    if (data.runs.size() != 2 || data.run_analyses.size() != 2 || data.confirmed_keys.size() != 1)
        return out;
    for (const comparison_key& k : data.confirmed_keys.front()) {
        const port_verdict* a = find_verdict(data.run_analyses[0], k);
        const port_verdict* b = find_verdict(data.run_analyses[1], k);
        if (a == nullptr || b == nullptr)
            continue;
        const bool split = (is_positive(a->outcome) && b->outcome == verdict::inconclusive) ||
                           (a->outcome == verdict::inconclusive && is_positive(b->outcome));
        if (split)
            out.push_back(k);
    }
    return out;
}

std::vector<comparison_key> controls_only_confirmations(const test_analysis& first,
                                                        std::span<const comparison_key> wanted) {
    std::vector<comparison_key> out;
    for (const comparison_key& k : wanted) {
        if (k.port != test_port::bt)
            continue;
        const port_verdict* v = find_verdict(first, k);
        if (v != nullptr && is_positive(v->outcome) && v->why == basis::port)
            out.push_back(k);
    }
    return out;
}

std::vector<comparison_key> comparisons_to_confirm(const test_analysis& analysis) {
    std::vector<comparison_key> which;
    for (const auto& v : analysis.verdicts)
        if (needs_confirmation(v))
            which.push_back({v.dir, v.port});
    return which;
}

} // namespace glasnode::proto::diff
