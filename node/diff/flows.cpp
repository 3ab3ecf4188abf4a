#include "node/diff/flows.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace glasnode::node {

using proto::negotiation::flow_measurement;

namespace {

// Microseconds within the wire bound (a measurement over it would make collect fail whole).
std::uint64_t wire_us(std::chrono::microseconds d) {
    const auto max = proto::negotiation::max_measured_time.count();
    return static_cast<std::uint64_t>(std::clamp<std::chrono::microseconds::rep>(d.count(), 0, max));
}

} // namespace

proto::negotiation::flow_measurement to_measurement(const flow_report& r, std::uint16_t index) {
    flow_measurement m;
    m.index = index;
    m.role = r.role;
    m.end = r.end;
    m.bytes_sent = r.bytes_sent;
    m.bytes_received = r.bytes_received;
    m.payload_bytes = r.payload_bytes;
    m.connect_time_us = wire_us(r.connect_time);
    m.duration_us = wire_us(r.duration);
    m.sample_interval_us = wire_us(r.sample_interval);
    m.samples = r.samples;
    proto::negotiation::fit_samples(m, proto::negotiation::max_samples_per_flow);
    m.resets_sent = r.resets_sent;
    m.resets_received = r.resets_received;
    m.min_rtt_us = r.tcp_end.valid ? wire_us(std::chrono::microseconds(r.tcp_end.min_rtt_us)) : 0;
    m.retransmits = r.tcp_end.valid ? r.tcp_end.total_retrans : 0;
    m.congestion_control = r.congestion_control.substr(
        0, std::min(r.congestion_control.size(), proto::negotiation::max_congestion_name));
    return m;
}

const flow_measurement& measured_flow::receiver() const {
    return agent.role == proto::flow_role::leech ? agent : provider;
}

const flow_measurement& measured_flow::sender() const {
    return agent.role == proto::flow_role::leech ? provider : agent;
}

double measured_flow::mbps() const {
    const flow_measurement& r = receiver();
    if (r.duration_us == 0) return 0.0;
    std::uint64_t bytes = 0;
    for (std::uint64_t s : r.samples) bytes += s;
    return static_cast<double>(bytes) * 8.0 / static_cast<double>(r.duration_us);
}

std::vector<measured_flow> match_measurements(std::span<const proto::negotiation::flow_spec> schedule,
                                              std::span<const flow_measurement> agent,
                                              std::span<const flow_measurement> provider) {
    std::map<std::uint16_t, const flow_measurement*> by_agent, by_provider;
    for (const auto& m : agent) by_agent[m.index] = &m;
    for (const auto& m : provider) by_provider[m.index] = &m;
    std::map<std::uint16_t, std::size_t> group_size;
    for (const auto& s : schedule) ++group_size[s.group];

    std::map<std::tuple<proto::direction, proto::test_port, proto::flow_kind, bool>, std::uint32_t>
        seen;
    std::vector<measured_flow> out;
    out.reserve(schedule.size());
    for (const auto& s : schedule) {
        measured_flow f;
        f.spec = s;
        f.concurrent = group_size[s.group] > 1;
        f.repetition = seen[{s.dir, s.port, s.kind, f.concurrent}]++;
        auto fill = [&](const std::map<std::uint16_t, const flow_measurement*>& from,
                        flow_measurement& to, proto::flow_role role) {
            if (auto it = from.find(s.index); it != from.end()) {
                to = *it->second;
            } else {
                to.index = s.index;
                to.end = proto::flow_end::not_run;
            }
            to.role = role;
        };
        fill(by_agent, f.agent, proto::negotiation::agent_role(s.dir));
        fill(by_provider, f.provider, proto::negotiation::provider_role(s.dir));
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<proto::flow_record> to_flow_records(std::span<const measured_flow> flows) {
    std::vector<proto::flow_record> out;
    out.reserve(flows.size());
    for (const measured_flow& f : flows) {
        const flow_measurement& rx = f.receiver();
        const flow_measurement& tx = f.sender();
        proto::flow_record r;
        r.dir = f.spec.dir;
        r.port = f.spec.port;
        r.kind = f.spec.kind;
        r.repetition = f.repetition;
        if (f.concurrent) r.concurrent_group = f.spec.group;
        r.mean_bps = f.mbps() * 1e6;
        r.interval_s = static_cast<double>(rx.sample_interval_us) / 1e6;
        if (r.interval_s > 0) {
            r.interval_bps.reserve(rx.samples.size());
            for (std::uint64_t b : rx.samples)
                r.interval_bps.push_back(static_cast<double>(b) * 8.0 / r.interval_s);
        }
        // The receiver's account of how the flow ended, unless it never ran there: then the
        // sender's (a connect that failed is seen by the agent, whatever its role).
        r.end = rx.end != proto::flow_end::not_run ? rx.end : tx.end;
        if (f.agent.end == proto::flow_end::connect_failed ||
            f.agent.end == proto::flow_end::connect_timeout)
            r.end = f.agent.end;
        if (rx.end != proto::flow_end::not_run)
            r.receiver_resets = proto::reset_report{rx.resets_sent, rx.resets_received};
        if (tx.end != proto::flow_end::not_run)
            r.sender_resets = proto::reset_report{tx.resets_sent, tx.resets_received};
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace glasnode::node
