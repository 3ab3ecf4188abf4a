#include "tests_proto/diff/measurement.hpp"

#include <algorithm>
#include <limits>

namespace glasnode::proto::diff {

namespace {

constexpr std::size_t measurement_fields = 15;

} // namespace

std::size_t sample_budget(std::size_t flows) noexcept {
    if (flows == 0)
        return max_samples_per_flow;
    return std::min(max_samples_per_flow, max_samples_per_message / flows);
}

void fit_samples(flow_measurement& m, std::size_t max_samples) {
    if (max_samples == 0) {
        m.samples.clear();
        return;
    }
    while (m.samples.size() > max_samples) {
        std::vector<std::uint64_t> merged;
        merged.reserve((m.samples.size() + 1) / 2);
        for (std::size_t i = 0; i < m.samples.size(); i += 2) {
            std::uint64_t v = m.samples[i];
            if (i + 1 < m.samples.size()) {
                const std::uint64_t w = m.samples[i + 1];
                v = v > std::numeric_limits<std::uint64_t>::max() - w
                        ? std::numeric_limits<std::uint64_t>::max()
                        : v + w;
            }
            merged.push_back(v);
        }
        m.samples = std::move(merged);
        m.sample_interval_us = m.sample_interval_us > std::numeric_limits<std::uint64_t>::max() / 2
                                   ? std::numeric_limits<std::uint64_t>::max()
                                   : m.sample_interval_us * 2;
    }
}

status check_measurement(const flow_measurement& m) {
    const auto max_us = static_cast<std::uint64_t>(max_measured_time.count());
    const auto bad = [&](std::string what) {
        return make_error(errc::invalid_argument,
                          "measurement of flow " + std::to_string(m.index) + ": " + what);
    };
    if (static_cast<std::uint8_t>(m.role) > 1)
        return bad("role out of range");
    if (static_cast<std::uint8_t>(m.end) > max_flow_end)
        return bad("end reason out of range");
    if (m.connect_time_us > max_us || m.duration_us > max_us || m.sample_interval_us > max_us ||
        m.min_rtt_us > max_us)
        return bad("a time field exceeds " + std::to_string(max_us) + " us");
    if (m.samples.size() > max_samples_per_flow) {
        return bad(std::to_string(m.samples.size()) + " samples exceed " +
                   std::to_string(max_samples_per_flow));
    }
    if (m.congestion_control.size() > max_congestion_name ||
        !wire::is_printable_ascii(m.congestion_control))
        return bad("congestion control name is too long or not printable");
    return {};
}

void encode_measurement(wire::packer& pk, const flow_measurement& m) {
    pk.pack_array(measurement_fields);
    pk.pack_uint16(m.index);
    pk.pack_uint8(static_cast<std::uint8_t>(m.role));
    pk.pack_uint8(static_cast<std::uint8_t>(m.end));
    pk.pack_uint64(m.bytes_sent);
    pk.pack_uint64(m.bytes_received);
    pk.pack_uint64(m.payload_bytes);
    pk.pack_uint64(m.connect_time_us);
    pk.pack_uint64(m.duration_us);
    pk.pack_uint64(m.sample_interval_us);
    pk.pack_array(static_cast<std::uint32_t>(m.samples.size()));
    for (std::uint64_t s : m.samples)
        pk.pack_uint64(s);
    pk.pack_uint32(m.resets_sent);
    pk.pack_uint32(m.resets_received);
    pk.pack_uint64(m.min_rtt_us);
    pk.pack_uint64(m.retransmits);
    wire::pack_str(pk, m.congestion_control);
}

result<flow_measurement> decode_measurement(const msgpack::object& array, std::string_view label) {
    const auto max_us = static_cast<std::uint64_t>(max_measured_time.count());
    wire::field_reader r(array, label, measurement_fields);
    flow_measurement m;
    m.index = r.uint<std::uint16_t>("index");
    m.role = static_cast<flow_role>(r.u64("role", 1));
    m.end = static_cast<flow_end>(r.u64("end", max_flow_end));
    m.bytes_sent = r.u64("bytes sent");
    m.bytes_received = r.u64("bytes received");
    m.payload_bytes = r.u64("payload bytes");
    m.connect_time_us = r.u64("connect time us", max_us);
    m.duration_us = r.u64("duration us", max_us);
    m.sample_interval_us = r.u64("sample interval us", max_us);
    const auto samples = r.array("samples", max_samples_per_flow);
    if (r.ok()) {
        const std::string samples_label = r.last_field_label();
        m.samples.reserve(samples.size());
        for (std::size_t i = 0; i < samples.size(); ++i) {
            if (samples[i].type != msgpack::type::POSITIVE_INTEGER) {
                return make_error(errc::protocol_error,
                                  samples_label + " item " + std::to_string(i) + ": expected uint");
            }
            m.samples.push_back(samples[i].via.u64);
        }
    }
    m.resets_sent = r.uint<std::uint32_t>("resets sent");
    m.resets_received = r.uint<std::uint32_t>("resets received");
    m.min_rtt_us = r.u64("min rtt us", max_us);
    m.retransmits = r.u64("retransmits");
    m.congestion_control = r.str("congestion control", max_congestion_name);
    if (auto s = r.finish(); !s)
        return s.err();
    if (!wire::is_printable_ascii(m.congestion_control)) {
        return make_error(errc::protocol_error,
                          std::string(label) +
                              " field 14 (congestion control): non-printable byte");
    }
    return m;
}

} // namespace glasnode::proto::diff
