#include "node/diff/report.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

namespace glasnode::node {
namespace {

// JSON has no NaN or infinity: such a figure (none is expected) is written as null.
nlohmann::json number(double v) {
    if (!std::isfinite(v)) return nullptr;
    return std::round(v * 1e4) / 1e4;
}

std::string rfc3339(std::uint64_t unix_ms) {
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, unix_ms % 1000);
}

nlohmann::json comparison_json(const proto::comparison& c) {
    return {{"outcome", proto::to_string(c.outcome)},
            {"glasnost",
             {{"decision", proto::to_string(c.glasnost.decision)},
              {"relative_difference", number(c.glasnost.relative_difference)},
              {"test_noise", number(c.glasnost.test_noise)},
              {"reference_noise", number(c.glasnost.reference_noise)}}},
            {"wehe",
             {{"decision", proto::to_string(c.wehe.decision)},
              {"area", number(c.wehe.area)},
              {"ks_p", number(c.wehe.ks_p)}}},
            {"paired",
             {{"decision", proto::to_string(c.paired.decision)},
              {"ratio", number(c.paired.ratio)},
              {"ratio_low", number(c.paired.ratio_low)},
              {"ratio_high", number(c.paired.ratio_high)},
              {"p_value", number(c.paired.p_value)}}},
            {"test_flows", c.test_flows},
            {"reference_flows", c.reference_flows},
            {"test_failed", c.test_failed},
            {"reference_failed", c.reference_failed}};
}

} // namespace

status analyse_report(test_report& r) {
    r.run_analyses.clear();
    for (const auto& run : r.runs) {
        auto a = proto::analyse(to_flow_records(run));
        if (!a) return a.err();
        r.run_analyses.push_back(std::move(*a));
    }
    if (r.run_analyses.empty()) return make_error(errc::invalid_argument, "no run to analyse");
    r.analysis = r.run_analyses.front();
    for (std::size_t i = 1; i < r.run_analyses.size(); ++i) {
        proto::test_analysis rerun = r.run_analyses[i];
        if (i - 1 < r.confirmed_keys.size()) {
            const auto& keys = r.confirmed_keys[i - 1];
            std::erase_if(rerun.verdicts, [&](const proto::port_verdict& v) {
                return std::none_of(keys.begin(), keys.end(), [&](const auto& k) {
                    return k.dir == v.dir && k.port == v.port;
                });
            });
        }
        r.analysis = proto::merge_rerun(r.analysis, rerun);
    }
    return {};
}

nlohmann::json to_json(const test_report& r) {
    nlohmann::json verdicts = nlohmann::json::array();
    for (const auto& v : r.analysis.verdicts) {
        nlohmann::json j{{"direction", proto::to_string(v.dir)},
                         {"port", proto::to_string(v.port)},
                         {"verdict", proto::to_string(v.outcome)},
                         {"basis", proto::to_string(v.why)},
                         {"bt_mbps", number(v.bt_mbps)},
                         {"control_mbps", number(v.control_mbps)},
                         {"ratio", number(v.ratio)},
                         {"ks_p", number(v.ks_p)},
                         {"area", number(v.area)},
                         {"confirmed", v.confirmed},
                         {"runs", v.runs},
                         {"forged_reset", v.forged_reset},
                         {"content_comparison", comparison_json(v.content)}};
        if (v.port_comparison) j["port_comparison"] = comparison_json(*v.port_comparison);
        verdicts.push_back(std::move(j));
    }
    nlohmann::json flows = nlohmann::json::array();
    for (std::size_t run = 0; run < r.runs.size(); ++run) {
        for (const auto& f : r.runs[run]) {
            const auto& rx = f.receiver();
            nlohmann::json samples = nlohmann::json::array();
            for (std::uint64_t b : rx.samples) samples.push_back(b);
            flows.push_back(
                {{"run", run},
                 {"index", f.spec.index},
                 {"direction", proto::to_string(f.spec.dir)},
                 {"port", proto::to_string(f.spec.port)},
                 {"kind", proto::to_string(f.spec.kind)},
                 {"group", f.spec.group},
                 {"repetition", f.repetition},
                 {"concurrent", f.concurrent},
                 {"mbps", number(f.mbps())},
                 {"end", proto::to_string(rx.end != proto::flow_end::not_run ? rx.end
                                                                             : f.sender().end)},
                 {"agent_end", proto::to_string(f.agent.end)},
                 {"provider_end", proto::to_string(f.provider.end)},
                 {"resets",
                  {{"agent_sent", f.agent.resets_sent},
                   {"agent_received", f.agent.resets_received},
                   {"provider_sent", f.provider.resets_sent},
                   {"provider_received", f.provider.resets_received}}},
                 {"connect_ms", number(static_cast<double>(f.agent.connect_time_us) / 1e3)},
                 {"min_rtt_ms", number(static_cast<double>(rx.min_rtt_us) / 1e3)},
                 {"retransmits", f.sender().retransmits},
                 {"interval_ms", number(static_cast<double>(rx.sample_interval_us) / 1e3)},
                 {"samples", std::move(samples)}});
        }
    }
    return {{"test_id", r.test_id},
            {"role", r.role},
            {"started_at", rfc3339(r.started_unix_ms)},
            {"started_unix_ms", r.started_unix_ms},
            {"duration_s", number(r.duration_s)},
            {"peer", {{"id", r.peer_id}, {"address", r.peer_address}}},
            {"congestion_control", r.congestion_control},
            {"runs", r.runs.size()},
            {"verdicts", std::move(verdicts)},
            {"flows", std::move(flows)}};
}

namespace {

std::string verdict_rows(const std::vector<stored_verdict>& rows) {
    std::string out = fmt::format("  {:<9} {:<8} {:<15} {:<8} {:>9} {:>12} {:>9} {:>6}\n",
                                  "direction", "port", "verdict", "basis", "BT Mbit/s",
                                  "ctl Mbit/s", "KS p", "area");
    for (const auto& v : rows) {
        out += fmt::format("  {:<9} {:<8} {:<15} {:<8} {:>9.2f} {:>12.2f} {:>9.3g} {:>6.2f}\n",
                           v.direction, v.port, v.verdict, v.basis == "none" ? "-" : v.basis,
                           v.bt_mbps, v.control_mbps, v.ks_p, v.area);
    }
    return out;
}

} // namespace

std::string to_table(const test_report& r) {
    test_record rec = to_record(r);
    std::string out = to_table(rec);
    std::size_t completed = 0, total = 0;
    for (const auto& run : r.runs) {
        for (const auto& f : run) {
            ++total;
            if (f.receiver().end == proto::flow_end::completed) ++completed;
        }
    }
    out += fmt::format("  {} of {} flows completed over {} run{}", completed, total,
                       r.runs.size(), r.runs.size() == 1 ? "" : "s");
    if (!r.congestion_control.empty()) out += ", congestion control " + r.congestion_control;
    out += "\n";
    return out;
}

std::string to_table(const test_record& r) {
    std::string out = fmt::format("test {} ({}) with {} at {}, {}, {:.1f} s\n", r.test_id,
                                  r.role, r.peer_id.substr(0, 16),
                                  r.peer_address.empty() ? "?" : r.peer_address,
                                  rfc3339(r.started_unix_ms), r.duration_s);
    out += verdict_rows(r.verdicts);
    return out;
}

test_record to_record(const test_report& r) {
    test_record rec;
    rec.test_id = r.test_id;
    rec.started_unix_ms = r.started_unix_ms;
    rec.duration_s = r.duration_s;
    rec.role = r.role;
    rec.peer_id = r.peer_id;
    rec.peer_address = r.peer_address;
    for (const auto& v : r.analysis.verdicts) {
        stored_verdict s;
        s.direction = proto::to_string(v.dir);
        s.port = proto::to_string(v.port);
        s.verdict = proto::to_string(v.outcome);
        s.basis = proto::to_string(v.why);
        s.bt_mbps = v.bt_mbps;
        s.control_mbps = v.control_mbps;
        s.ks_p = v.ks_p;
        s.area = v.area;
        rec.verdicts.push_back(std::move(s));
    }
    rec.report_json = to_json(r).dump();
    return rec;
}

} // namespace glasnode::node
