// The negotiation protocol's messages (type range 0x0100 - 0x01ff, see overlay/wire/message.hpp),
// exchanged over an authenticated control channel:
//
//   agent -> provider   negotiate      propose a test and its schedule
//   provider -> agent   queue_status   the agent's place in the provider's queue (on change)
//   provider -> agent   grant          the slot is the agent's: test token and time budget
//   agent -> provider   collect        the agent's measurements, after its flows
//   provider -> agent   collect_reply  the provider's measurements; the test is over
//   agent -> provider   cancel         withdraw the queued or running test
// Refusals (bad schedule, queue full, no test to collect) are wire::error_message with
// wire_error::refused, busy or unsupported_version and a reason for people.
//
// Enum fields travel as small uints with the codes given below (stable, never renumbered):
// direction upload 0 / download 1, port bt 0 / neutral 1, kind bt 0 / control 1; flow_role and
// flow_end as their enumerator values.
//
// Bounds checked on decode: test name at most max_test_name printable bytes, at most
// max_schedule_flows flows, queue position and length at most max_queue_report, grant validity
// at most max_grant_validity, measurement lists at most max_schedule_flows entries with at most
// max_samples_per_message samples in all (and each measurement's own bounds).
//
// Errors: decode() returns errc::protocol_error for a wrong field count, type or enum value and
// errc::limit_exceeded for an oversized list or string; it never throws.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "overlay/wire/message.hpp"
#include "storage/result.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::proto::negotiation {

// The measurements that collect and collect_reply carry are the differential test's data.
using diff::check_measurement;
using diff::decode_measurement;
using diff::encode_measurement;
using diff::fit_samples;
using diff::flow_measurement;
using diff::max_congestion_name;
using diff::max_flow_end;
using diff::max_measured_time;
using diff::max_samples_per_message;
using diff::sample_budget;
using proto::flow_end;
using proto::max_samples_per_flow;

inline constexpr std::size_t max_test_name = 32;
inline constexpr std::uint32_t max_queue_report = 65535;
inline constexpr std::chrono::milliseconds max_grant_validity = std::chrono::hours(1);

struct negotiate {
    static constexpr wire::message_type type_id = 0x0101;
    static constexpr std::string_view name = "negotiate";
    std::string test_name{diff_test_name};
    std::uint32_t test_version = diff_test_version;
    std::vector<flow_spec> schedule;
    // Optional field 3: the rate, bit/s, the agent asks both ends' seeds to pace pieces at no
    // more than (a byte budget on fast paths); 0 or absent: no cap asked. A provider may pace
    // lower still (its own cap), never higher.
    std::uint64_t max_rate_bps = 0;

    void encode(wire::packer& pk) const;
    static result<negotiate> decode(const msgpack::object& body);
    friend bool operator==(const negotiate&, const negotiate&) = default;
};

struct queue_status {
    static constexpr wire::message_type type_id = 0x0102;
    static constexpr std::string_view name = "queue_status";
    std::uint32_t position = 0; // 1 = next to be granted
    std::uint32_t queue_length = 0;

    void encode(wire::packer& pk) const;
    static result<queue_status> decode(const msgpack::object& body);
    friend bool operator==(const queue_status&, const queue_status&) = default;
};

struct grant {
    static constexpr wire::message_type type_id = 0x0103;
    static constexpr std::string_view name = "grant";
    token_t token{};
    // The provider accepts the test's flows and its collect for this long from the grant.
    std::uint64_t valid_for_ms = 0;
    // Where the provider's test ports listen (on the address the agent reached it at).
    std::uint16_t bt_port = 0;
    std::uint16_t neutral_port = 0;

    void encode(wire::packer& pk) const;
    static result<grant> decode(const msgpack::object& body);
    friend bool operator==(const grant&, const grant&) = default;
};

struct collect {
    static constexpr wire::message_type type_id = 0x0104;
    static constexpr std::string_view name = "collect";
    std::vector<flow_measurement> measurements; // the agent's, one per flow it ran or skipped

    void encode(wire::packer& pk) const;
    static result<collect> decode(const msgpack::object& body);
    friend bool operator==(const collect&, const collect&) = default;
};

struct collect_reply {
    static constexpr wire::message_type type_id = 0x0105;
    static constexpr std::string_view name = "collect_reply";
    std::vector<flow_measurement> measurements; // the provider's, one per scheduled flow
    // Fields 1-3, optional (absent from providers that do not count them): connections,
    // resets_received, could_reset_peer (see measurement.hpp).
    std::optional<diff::unidentified_connections> unidentified;

    void encode(wire::packer& pk) const;
    static result<collect_reply> decode(const msgpack::object& body);
    friend bool operator==(const collect_reply&, const collect_reply&) = default;
};

// Withdraws the session's queued or running test. Empty body.
struct cancel {
    static constexpr wire::message_type type_id = 0x0106;
    static constexpr std::string_view name = "cancel";

    void encode(wire::packer& pk) const;
    static result<cancel> decode(const msgpack::object& body);
    friend bool operator==(const cancel&, const cancel&) = default;
};

// Adds the six negotiation messages to `registry`.
status add_negotiation_messages(wire::message_registry& registry);

// What a provider accepts from an agent: negotiate, collect, cancel.
wire::message_registry agent_to_provider_registry();
// What an agent accepts from a provider: queue_status, grant, collect_reply and the core error.
wire::message_registry provider_to_agent_registry();

} // namespace glasnode::proto::negotiation
