#include "node/diff/report.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <set>

#include <fmt/format.h>

namespace glasnode::node {
namespace {

// JSON has no NaN or infinity: such a figure (none is expected) is written as null.
nlohmann::json number(double v) {
    if (!std::isfinite(v))
        return nullptr;
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

nlohmann::json peak_json(const proto::glasnost_outcome& g) {
    return {{"decision", proto::to_string(g.decision)},
            {"test_peak_mbps", number(g.test_max_bps / 1e6)},
            {"reference_peak_mbps", number(g.reference_max_bps / 1e6)},
            {"relative_difference", number(g.relative_difference)},
            {"test_noise", number(g.test_noise)},
            {"reference_noise", number(g.reference_noise)}};
}

nlohmann::json onset_json(const proto::throttle_onset& o) {
    return {{"seconds", number(o.seconds)}, {"bytes", number(o.bytes)}, {"flows", o.flows}};
}

nlohmann::json policing_json(const proto::policing_signature& p) {
    return {{"test_retransmit_fraction_min", number(p.test_min)},
            {"reference_retransmit_fraction_max", number(p.reference_max)}};
}

nlohmann::json comparison_json(const proto::comparison& c) {
    nlohmann::json j = {{"outcome", proto::to_string(c.outcome)},
                        {"glasnost",
                         {{"decision", proto::to_string(c.glasnost.decision)},
                          {"relative_difference", number(c.glasnost.relative_difference)},
                          {"test_noise", number(c.glasnost.test_noise)},
                          {"reference_noise", number(c.glasnost.reference_noise)}}},
                        {"peak", peak_json(c.peak)},
                        {"late", peak_json(c.late)},
                        {"early", peak_json(c.early)},
                        {"cut_in_every_test_flow", c.cut_in_every_test_flow},
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
    if (c.onset)
        j["onset"] = onset_json(*c.onset);
    if (c.policing)
        j["policing"] = policing_json(*c.policing);
    return j;
}

} // namespace

std::string congestion_control_used(const proto::diff::test_data& data) {
    std::set<std::string> names;
    for (const auto& run : data.runs)
        for (const auto& f : run)
            if (!f.sender().congestion_control.empty())
                names.insert(f.sender().congestion_control);
    std::string out;
    for (const auto& n : names)
        out += (out.empty() ? "" : "/") + n;
    return out;
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
        if (v.port_comparison)
            j["port_comparison"] = comparison_json(*v.port_comparison);
        if (v.endpoint_comparison)
            j["endpoint_comparison"] = comparison_json(*v.endpoint_comparison);
        if (v.confirmed_by)
            j["confirmed_by"] = proto::to_string(*v.confirmed_by);
        if (v.onset)
            j["onset"] = onset_json(*v.onset);
        if (v.policing)
            j["policing"] = policing_json(*v.policing);
        verdicts.push_back(std::move(j));
    }
    nlohmann::json flows = nlohmann::json::array();
    for (std::size_t run = 0; run < r.runs.size(); ++run) {
        for (const auto& f : r.runs[run]) {
            const auto& rx = f.receiver();
            nlohmann::json samples = nlohmann::json::array();
            for (std::uint64_t b : rx.samples)
                samples.push_back(b);
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
                 {"end",
                  proto::to_string(rx.end != proto::flow_end::not_run ? rx.end : f.sender().end)},
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
                 {"wire_bytes",
                  {{"agent_sent", f.agent.bytes_sent},
                   {"agent_received", f.agent.bytes_received},
                   {"provider_sent", f.provider.bytes_sent},
                   {"provider_received", f.provider.bytes_received}}},
                 {"interval_ms", number(static_cast<double>(rx.sample_interval_us) / 1e3)},
                 {"duration_us", rx.duration_us},
                 {"samples", std::move(samples)}});
        }
    }
    auto keys_json = [](const std::vector<proto::diff::comparison_key>& keys) {
        nlohmann::json one = nlohmann::json::array();
        for (const auto& k : keys)
            one.push_back(
                {{"direction", proto::to_string(k.dir)}, {"port", proto::to_string(k.port)}});
        return one;
    };
    nlohmann::json confirmations = nlohmann::json::array();
    for (const auto& keys : r.confirmed_keys)
        confirmations.push_back(keys_json(keys));
    nlohmann::json pooled = nlohmann::json::array();
    for (const auto& p : r.pooled)
        pooled.push_back({{"direction", proto::to_string(p.pooled.dir)},
                          {"port", proto::to_string(p.pooled.port)},
                          {"by_port", proto::to_string(p.by.port)}});
    nlohmann::json unidentified = nlohmann::json::array();
    for (std::size_t run = 0; run < r.runs.size(); ++run) {
        if (run < r.unidentified.size() && r.unidentified[run])
            unidentified.push_back({{"connections", r.unidentified[run]->connections},
                                    {"resets_received", r.unidentified[run]->resets_received},
                                    {"could_reset_peer", r.unidentified[run]->could_reset_peer}});
        else
            unidentified.push_back(nullptr);
    }
    return {
        {"test_id", r.test_id},
        {"role", r.role},
        {"started_at", rfc3339(r.started_unix_ms)},
        {"started_unix_ms", r.started_unix_ms},
        {"duration_s", number(r.duration_s)},
        {"peer", {{"id", r.peer_id}, {"address", r.peer_address}}},
        {"congestion_control", r.congestion_control},
        {"congestion_control_used", congestion_control_used(r)},
        {"runs", r.runs.size()},
        {"confirmations", std::move(confirmations)},
        {"unconfirmed", keys_json(r.unconfirmed_keys)},
        {"pooled_confirmations", std::move(pooled)},
        {"max_rate_mbps", number(static_cast<double>(r.max_rate_bps) / 1e6)},
        {"byte_budget_mb", number(static_cast<double>(r.max_test_bytes) / 1e6)},
        {"time_budget_s", number(static_cast<double>(r.time_budget_ms) / 1e3)},
        {"agent_wire_mb", number(static_cast<double>(proto::diff::agent_bytes(r)) / 1e6)},
        {"pairing", proto::diff::to_string(r.pairing)},
        {"directions_together", r.directions_together},
        {"pairing_rates_mbps",
         {{"upload", number(r.pairing_upload_bps / 1e6)},
          {"download", number(r.pairing_download_bps / 1e6)}}},
        {"paired_upload_pace_mbps", number(static_cast<double>(r.paired_upload_pace_bps) / 1e6)},
        {"pairing_steady_fraction",
         r.pairing_steady_fraction ? number(*r.pairing_steady_fraction) : nlohmann::json(nullptr)},
        {"unidentified_connections", std::move(unidentified)},
        {"verdicts", std::move(verdicts)},
        {"flows", std::move(flows)}};
}

namespace {

std::string verdict_rows(const std::vector<stored_verdict>& rows) {
    std::string out =
        fmt::format("  {:<9} {:<8} {:<15} {:<8} {:>9} {:>12} {:>9} {:>6}\n", "direction", "port",
                    "verdict", "basis", "BT Mbit/s", "ctl Mbit/s", "KS p", "area");
    for (const auto& v : rows) {
        out += fmt::format("  {:<9} {:<8} {:<15} {:<8} {:>9.2f} {:>12.2f} {:>9.3g} {:>6.2f}\n",
                           v.direction, v.port, v.verdict, v.basis == "none" ? "-" : v.basis,
                           v.bt_mbps, v.control_mbps, v.ks_p, v.area);
    }
    return out;
}

} // namespace

namespace {

template <class E, std::size_t N>
std::optional<E> parse_name(std::string_view text, const E (&values)[N]) {
    for (E v : values)
        if (proto::to_string(v) == text)
            return v;
    return std::nullopt;
}

constexpr proto::direction all_directions[] = {proto::direction::upload,
                                               proto::direction::download};
constexpr proto::test_port all_ports[] = {proto::test_port::bt, proto::test_port::neutral};
constexpr proto::flow_kind all_kinds[] = {proto::flow_kind::bt, proto::flow_kind::control};
constexpr proto::flow_end all_ends[] = {proto::flow_end::completed,
                                        proto::flow_end::reset_received,
                                        proto::flow_end::eof_early,
                                        proto::flow_end::stalled,
                                        proto::flow_end::connect_failed,
                                        proto::flow_end::connect_timeout,
                                        proto::flow_end::handshake_failed,
                                        proto::flow_end::refused,
                                        proto::flow_end::error,
                                        proto::flow_end::not_run};

// Reads the enum field `key` of `j` (a flow or a comparison), naming it in the error.
template <class E, std::size_t N>
result<E> enum_field(const nlohmann::json& j, const char* key, const E (&values)[N]) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string())
        return make_error(errc::invalid_argument, fmt::format("field '{}' is missing", key));
    const auto v = parse_name(it->get_ref<const std::string&>(), values);
    if (!v)
        return make_error(errc::invalid_argument,
                          fmt::format("field '{}' has an unknown value", key));
    return *v;
}

// A list of at most four {direction, port} comparisons (report field `field`).
result<std::vector<proto::diff::comparison_key>> keys_from_json(const nlohmann::json& keys,
                                                                const char* field) {
    const auto malformed = [&] {
        return make_error(errc::invalid_argument,
                          fmt::format("report field '{}' holds a malformed entry", field));
    };
    if (!keys.is_array() || keys.size() > 4)
        return malformed();
    std::vector<proto::diff::comparison_key> one;
    for (const auto& k : keys) {
        if (!k.is_object())
            return malformed();
        auto dir = enum_field(k, "direction", all_directions);
        if (!dir)
            return dir.err();
        auto port = enum_field(k, "port", all_ports);
        if (!port)
            return port.err();
        one.push_back({*dir, *port});
    }
    return one;
}

result<std::uint64_t> count_field(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned())
        return make_error(errc::invalid_argument,
                          fmt::format("flow field '{}' is missing or not a count", key));
    return it->get<std::uint64_t>();
}

result<measured_flow> flow_from_json(const nlohmann::json& j) {
    if (!j.is_object())
        return make_error(errc::invalid_argument, "a flow is not an object");
    measured_flow f;
    auto dir = enum_field(j, "direction", all_directions);
    auto port = enum_field(j, "port", all_ports);
    auto kind = enum_field(j, "kind", all_kinds);
    auto agent_end = enum_field(j, "agent_end", all_ends);
    auto provider_end = enum_field(j, "provider_end", all_ends);
    auto index = count_field(j, "index");
    auto group = count_field(j, "group");
    auto repetition = count_field(j, "repetition");
    if (!dir)
        return dir.err();
    if (!port)
        return port.err();
    if (!kind)
        return kind.err();
    if (!agent_end)
        return agent_end.err();
    if (!provider_end)
        return provider_end.err();
    if (!index)
        return index.err();
    if (!group)
        return group.err();
    if (!repetition)
        return repetition.err();
    if (*index > 0xffff || *group > 0xffff || *repetition > 0xffffffff)
        return make_error(errc::invalid_argument, "flow index, group or repetition out of range");
    f.spec.index = static_cast<std::uint16_t>(*index);
    f.spec.dir = *dir;
    f.spec.port = *port;
    f.spec.kind = *kind;
    f.spec.group = static_cast<std::uint16_t>(*group);
    f.repetition = static_cast<std::uint32_t>(*repetition);
    const auto concurrent = j.find("concurrent");
    if (concurrent == j.end() || !concurrent->is_boolean())
        return make_error(errc::invalid_argument, "flow field 'concurrent' is missing");
    f.concurrent = concurrent->get<bool>();
    f.agent.index = f.provider.index = f.spec.index;
    f.agent.role = proto::agent_role(f.spec.dir);
    f.provider.role = proto::provider_role(f.spec.dir);
    f.agent.end = *agent_end;
    f.provider.end = *provider_end;
    // Reports written before it had no retransmit count: then none is known.
    if (const auto rt = j.find("retransmits"); rt != j.end()) {
        if (!rt->is_number_unsigned())
            return make_error(errc::invalid_argument, "flow field 'retransmits' is not a count");
        (f.agent.role == proto::flow_role::leech ? f.provider : f.agent).retransmits =
            rt->get<std::uint64_t>();
    }

    const auto resets = j.find("resets");
    if (resets == j.end() || !resets->is_object())
        return make_error(errc::invalid_argument, "flow field 'resets' is missing");
    std::uint32_t* targets[] = {&f.agent.resets_sent, &f.agent.resets_received,
                                &f.provider.resets_sent, &f.provider.resets_received};
    const char* names[] = {"agent_sent", "agent_received", "provider_sent", "provider_received"};
    for (std::size_t i = 0; i < 4; ++i) {
        auto n = count_field(*resets, names[i]);
        if (!n)
            return make_error(
                errc::invalid_argument,
                fmt::format("flow field 'resets.{}' is missing or not a count", names[i]));
        *targets[i] = static_cast<std::uint32_t>(std::min<std::uint64_t>(*n, 0xffffffff));
    }

    // The receiver's series: samples (bytes per interval), interval and measured duration.
    proto::diff::flow_measurement& rx =
        f.spec.dir == proto::direction::download ? f.agent : f.provider;
    const auto samples = j.find("samples");
    if (samples == j.end() || !samples->is_array())
        return make_error(errc::invalid_argument, "flow field 'samples' is missing");
    if (samples->size() > proto::max_samples_per_flow)
        return make_error(errc::limit_exceeded,
                          fmt::format("a flow has {} samples, limit {}", samples->size(),
                                      proto::max_samples_per_flow));
    std::uint64_t bytes = 0;
    rx.samples.reserve(samples->size());
    for (const auto& s : *samples) {
        if (!s.is_number_unsigned())
            return make_error(errc::invalid_argument, "a flow sample is not a byte count");
        rx.samples.push_back(s.get<std::uint64_t>());
        bytes += rx.samples.back();
    }
    const auto interval = j.find("interval_ms");
    if (interval == j.end() || !interval->is_number() || interval->get<double>() < 0 ||
        !std::isfinite(interval->get<double>()))
        return make_error(errc::invalid_argument, "flow field 'interval_ms' is missing");
    rx.sample_interval_us = static_cast<std::uint64_t>(std::llround(interval->get<double>() * 1e3));
    if (const auto d = j.find("duration_us"); d != j.end() && d->is_number_unsigned()) {
        rx.duration_us = d->get<std::uint64_t>();
    } else if (const auto m = j.find("mbps");
               m != j.end() && m->is_number() && m->get<double>() > 0) {
        // Reports written before duration_us: the duration the mean rate implies.
        rx.duration_us = static_cast<std::uint64_t>(
            std::llround(static_cast<double>(bytes) * 8.0 / m->get<double>()));
    }
    return f;
}

} // namespace

result<test_report> report_from_json(const nlohmann::json& j) {
    if (!j.is_object())
        return make_error(errc::invalid_argument, "a report is a JSON object");
    const auto flows = j.find("flows");
    if (flows == j.end() || !flows->is_array())
        return make_error(errc::invalid_argument, "report field 'flows' is missing");
    if (flows->size() > proto::max_flows)
        return make_error(errc::limit_exceeded, fmt::format("a report has {} flows, limit {}",
                                                            flows->size(), proto::max_flows));
    test_report r;
    if (const auto id = j.find("test_id"); id != j.end() && id->is_string())
        r.test_id = *id;
    if (const auto role = j.find("role"); role != j.end() && role->is_string())
        r.role = *role;
    if (const auto t = j.find("started_unix_ms"); t != j.end() && t->is_number_unsigned())
        r.started_unix_ms = *t;
    if (const auto d = j.find("duration_s"); d != j.end() && d->is_number())
        r.duration_s = *d;
    if (const auto peer = j.find("peer"); peer != j.end() && peer->is_object()) {
        // Like the other descriptive fields: read when a string, else left empty. (value()
        // would throw on another type, and nothing above catches.)
        if (const auto id = peer->find("id"); id != peer->end() && id->is_string())
            r.peer_id = *id;
        if (const auto a = peer->find("address"); a != peer->end() && a->is_string())
            r.peer_address = *a;
    }
    if (const auto cc = j.find("congestion_control"); cc != j.end() && cc->is_string())
        r.congestion_control = *cc;
    for (const auto& jf : *flows) {
        auto run = count_field(jf, "run");
        if (!run)
            return run.err();
        if (*run > 8)
            return make_error(errc::invalid_argument, "flow field 'run' out of range");
        auto f = flow_from_json(jf);
        if (!f)
            return f.err();
        // What the analysis would refuse of it, refused here, naming the flow.
        if (auto st = proto::check_flow_figures(proto::diff::to_flow_records(std::span(&*f, 1))[0]);
            !st)
            return make_error(st.err().code, fmt::format("flow {} of run {} {}", f->spec.index,
                                                         *run, st.err().reason));
        if (r.runs.size() <= *run)
            r.runs.resize(*run + 1);
        r.runs[*run].push_back(std::move(*f));
    }
    if (const auto u = j.find("unidentified_connections"); u != j.end()) {
        if (!u->is_array() || u->size() > r.runs.size())
            return make_error(errc::invalid_argument,
                              "report field 'unidentified_connections' does not match the runs");
        for (const auto& one : *u) {
            if (one.is_null()) {
                r.unidentified.emplace_back();
                continue;
            }
            if (!one.is_object())
                return make_error(
                    errc::invalid_argument,
                    "report field 'unidentified_connections' holds a malformed entry");
            proto::diff::unidentified_connections c;
            for (auto [key, into] : {std::pair{"connections", &c.connections},
                                     std::pair{"resets_received", &c.resets_received},
                                     std::pair{"could_reset_peer", &c.could_reset_peer}}) {
                auto n = count_field(one, key);
                if (!n)
                    return n.err();
                if (*n > 0xffffffffu)
                    return make_error(errc::invalid_argument,
                                      fmt::format("unidentified_connections field '{}' is out of "
                                                  "range",
                                                  key));
                *into = static_cast<std::uint32_t>(*n);
            }
            r.unidentified.push_back(c);
        }
    }
    if (const auto u = j.find("unconfirmed"); u != j.end()) {
        auto keys = keys_from_json(*u, "unconfirmed");
        if (!keys)
            return keys.err();
        r.unconfirmed_keys = std::move(*keys);
    }
    if (const auto p = j.find("pooled_confirmations"); p != j.end()) {
        auto keys = keys_from_json(*p, "pooled_confirmations");
        if (!keys)
            return keys.err();
        for (std::size_t i = 0; i < keys->size(); ++i) {
            auto by = enum_field((*p)[i], "by_port", all_ports);
            if (!by)
                return by.err();
            r.pooled.push_back({(*keys)[i], {(*keys)[i].dir, *by}});
        }
    }
    if (const auto m = j.find("max_rate_mbps"); m != j.end() && m->is_number() && *m >= 0)
        r.max_rate_bps = static_cast<std::uint64_t>(m->get<double>() * 1e6 + 0.5);
    if (const auto m = j.find("byte_budget_mb"); m != j.end() && m->is_number() && *m >= 0)
        r.max_test_bytes = static_cast<std::uint64_t>(m->get<double>() * 1e6 + 0.5);
    if (const auto m = j.find("time_budget_s");
        m != j.end() && m->is_number() && *m >= 0 && *m <= 86'400)
        r.time_budget_ms = static_cast<std::uint64_t>(m->get<double>() * 1e3 + 0.5);
    if (const auto p = j.find("pairing"); p != j.end() && p->is_string()) {
        const auto mode = proto::diff::parse_direction_pairing(p->get<std::string>());
        if (!mode)
            return make_error(errc::invalid_argument,
                              "report field 'pairing' is not auto, apart or together");
        r.pairing = *mode;
    }
    if (const auto t = j.find("directions_together"); t != j.end() && t->is_boolean())
        r.directions_together = t->get<bool>();
    if (const auto p = j.find("pairing_rates_mbps"); p != j.end() && p->is_object()) {
        for (auto [key, into] : {std::pair{"upload", &r.pairing_upload_bps},
                                 std::pair{"download", &r.pairing_download_bps}}) {
            const auto v = p->find(key);
            if (v != p->end() && v->is_number() && *v >= 0 && std::isfinite(v->get<double>()))
                *into = v->get<double>() * 1e6;
        }
    }
    if (const auto p = j.find("paired_upload_pace_mbps"); p != j.end()) {
        // The analysis compares upload flows at this pace: a bad value is refused, not ignored.
        if (!p->is_number() || !std::isfinite(p->get<double>()) || *p < 0 || *p > 100'000)
            return make_error(errc::invalid_argument,
                              "report field 'paired_upload_pace_mbps' is not a rate in "
                              "[0, 100000] Mbit/s");
        r.paired_upload_pace_bps = static_cast<std::uint64_t>(p->get<double>() * 1e6 + 0.5);
    }
    if (const auto f = j.find("pairing_steady_fraction");
        f != j.end() && f->is_number() && std::isfinite(f->get<double>()) && *f >= 0 && *f <= 1)
        r.pairing_steady_fraction = f->get<double>();
    if (const auto c = j.find("confirmations"); c != j.end()) {
        if (!c->is_array() || c->size() + 1 != std::max<std::size_t>(r.runs.size(), 1))
            return make_error(errc::invalid_argument,
                              "report field 'confirmations' does not match the runs");
        for (const auto& keys : *c) {
            auto one = keys_from_json(keys, "confirmations");
            if (!one)
                return one.err();
            r.confirmed_keys.push_back(std::move(*one));
        }
        return r;
    }
    // Reports written before `confirmations`: a rerun then held sequential flows only for the
    // comparisons it confirmed.
    for (std::size_t run = 1; run < r.runs.size(); ++run) {
        std::vector<proto::diff::comparison_key> keys;
        for (const auto& f : r.runs[run]) {
            if (!f.concurrent && !proto::diff::holds(keys, {f.spec.dir, f.spec.port}))
                keys.push_back({f.spec.dir, f.spec.port});
        }
        r.confirmed_keys.push_back(std::move(keys));
    }
    return r;
}

std::string to_table(const test_report& r) {
    test_record rec = to_record(r);
    std::string out = to_table(rec);
    for (const auto& v : r.analysis.verdicts) {
        if (v.onset)
            out += fmt::format("  {} {}: full rate for the first {:.1f} MB ({:.1f} s) of each "
                               "flow, throttled after\n",
                               proto::to_string(v.dir), proto::to_string(v.port),
                               v.onset->bytes / 1e6, v.onset->seconds);
    }
    std::size_t completed = 0, total = 0;
    for (const auto& run : r.runs) {
        for (const auto& f : run) {
            ++total;
            if (f.receiver().end == proto::flow_end::completed)
                ++completed;
        }
    }
    out += fmt::format("  {} of {} flows completed over {} run{}", completed, total, r.runs.size(),
                       r.runs.size() == 1 ? "" : "s");
    if (const std::string used = congestion_control_used(r); !used.empty())
        out += ", congestion control " + used;
    else if (!r.congestion_control.empty())
        out += ", congestion control " + r.congestion_control;
    out += "\n";
    return out;
}

std::string to_table(const test_record& r) {
    std::string out = fmt::format(
        "test {} ({}) with {} at {}, {}, {:.1f} s\n", r.test_id, r.role, r.peer_id.substr(0, 16),
        r.peer_address.empty() ? "?" : r.peer_address, rfc3339(r.started_unix_ms), r.duration_s);
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
