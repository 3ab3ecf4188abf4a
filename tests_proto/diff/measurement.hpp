// What one end measured for one flow of a differential test. Both ends keep their own record;
// the collect exchange hands each end the other's, so the analysis can compare what was sent
// with what arrived (a reset that neither end sent was forged on the path).
//
// Failures of the network are data here (flow_end), never errors.
//
// Bounds (checked by decode_measurement, which every collect message goes through): at most
// max_samples_per_flow samples per flow and max_samples_per_message over one message, times
// at most max_measured_time, a congestion-control name of at most max_congestion_name printable
// bytes, enum values inside their ranges. fit_samples() brings an oversized sample series
// within a budget by merging adjacent intervals, so a long or finely sampled flow still fits.
//
// Errors: decode_measurement returns errc::protocol_error for a wrong shape, type or enum value
// and errc::limit_exceeded for an oversized list or string; it never throws.
// Thread-safety: plain values and pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "overlay/wire/message.hpp"
#include "storage/result.hpp"
#include "tests_proto/flow_types.hpp"

namespace glasnode::proto::diff {

// How a flow ended, as seen by one end. Wire codes are the enumerator values (never renumber).
using proto::flow_end;
inline constexpr std::uint8_t max_flow_end = 9;

using proto::max_samples_per_flow;
// Keeps a whole collect message well under the control channel's 256 KiB frame: 16384 samples
// of at most 9 bytes each plus max_schedule_flows fixed-size records is about 200 KiB.
inline constexpr std::size_t max_samples_per_message = 16384;
inline constexpr std::size_t max_congestion_name = 16; // Linux TCP_CA_NAME_MAX
// Upper bound of every time field: a flow is bounded by its schedule (30 s by default); an hour
// leaves room for any policy while rejecting garbage.
inline constexpr std::chrono::microseconds max_measured_time = std::chrono::hours(1);

struct flow_measurement {
    std::uint16_t index = 0;
    flow_role role = flow_role::seed;
    flow_end end = flow_end::not_run;
    std::uint64_t bytes_sent = 0;     // on the wire, headers included
    std::uint64_t bytes_received = 0; // on the wire, headers included
    std::uint64_t payload_bytes =
        0; // piece block bytes moved (sent by a seed, received by a leech)
    std::uint64_t connect_time_us = 0;
    std::uint64_t duration_us = 0;
    std::uint64_t sample_interval_us = 0;
    std::vector<std::uint64_t> samples; // payload bytes per interval, in order
    std::uint32_t resets_sent = 0;
    std::uint32_t resets_received = 0;
    std::uint64_t min_rtt_us = 0; // 0: unknown
    std::uint64_t retransmits = 0;
    std::string congestion_control; // e.g. "cubic", "bbr"; empty: unknown

    friend bool operator==(const flow_measurement&, const flow_measurement&) = default;
};

// What a flow cost its end on the wire, both ways: what a byte budget counts.
constexpr std::uint64_t wire_bytes(const flow_measurement& m) noexcept {
    return m.bytes_sent + m.bytes_received;
}

// A receiver's (leech's) mean rate over its measurement window, bit/s: its samples' bytes over
// the window's duration (0 when it has none).
constexpr double window_rate_bps(const flow_measurement& m) noexcept {
    if (m.duration_us == 0)
        return 0.0;
    std::uint64_t bytes = 0;
    for (std::uint64_t s : m.samples)
        bytes += s;
    return static_cast<double>(bytes) * 8e6 / static_cast<double>(m.duration_us);
}

// What a provider's test ports saw, during one test, of connections from the agent's address
// that they could not tie to a flow of it: closed before a valid handshake arrived (a DPI box
// that answers the first BitTorrent packet with a RST leaves the provider nothing else), or
// refused. `could_reset_peer` counts those the provider closed in a way that may have shown the
// agent a reset (test_port_listener.hpp); when it is 0, a reset an agent flow met before the
// provider identified it was not the provider's: both ends are ours, so it was forged.
struct unidentified_connections {
    std::uint32_t connections = 0;
    std::uint32_t resets_received = 0; // RSTs that ended them
    std::uint32_t could_reset_peer = 0;

    friend bool operator==(const unidentified_connections&,
                           const unidentified_connections&) = default;
};

// The per-flow sample budget for a schedule of `flows` flows: max_samples_per_flow, lowered so
// that all flows together stay within max_samples_per_message. flows == 0 -> the per-flow cap.
std::size_t sample_budget(std::size_t flows) noexcept;

// Merges adjacent samples pairwise (doubling sample_interval_us) until at most `max_samples`
// remain; a trailing odd sample stays alone. Totals are preserved. max_samples == 0 clears the
// series.
void fit_samples(flow_measurement& m, std::size_t max_samples);

// The decode bounds applied to a locally made measurement (errc::invalid_argument naming the
// field): what the provider checks before it stores a flow engine's report.
status check_measurement(const flow_measurement& m);

// A measurement as one msgpack array (15 fields in the order of the struct).
void encode_measurement(wire::packer& pk, const flow_measurement& m);
// `label` names the array in reasons ("collect field 0 (measurements) item 3").
result<flow_measurement> decode_measurement(const msgpack::object& array, std::string_view label);

} // namespace glasnode::proto::diff
