#include "node/diff/flows.hpp"

#include <algorithm>

namespace glasnode::node {

using proto::diff::flow_measurement;

namespace {

// Microseconds within the wire bound (a measurement over it would make collect fail whole).
std::uint64_t wire_us(std::chrono::microseconds d) {
    const auto max = proto::diff::max_measured_time.count();
    return static_cast<std::uint64_t>(
        std::clamp<std::chrono::microseconds::rep>(d.count(), 0, max));
}

} // namespace

flow_measurement to_measurement(const flow_report& r, std::uint16_t index) {
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
    proto::diff::fit_samples(m, proto::max_samples_per_flow);
    m.resets_sent = r.resets_sent;
    m.resets_received = r.resets_received;
    m.min_rtt_us = r.tcp_end.valid ? wire_us(std::chrono::microseconds(r.tcp_end.min_rtt_us)) : 0;
    m.retransmits = r.tcp_end.valid ? r.tcp_end.total_retrans : 0;
    m.congestion_control = r.congestion_control.substr(
        0, std::min(r.congestion_control.size(), proto::diff::max_congestion_name));
    return m;
}

} // namespace glasnode::node
