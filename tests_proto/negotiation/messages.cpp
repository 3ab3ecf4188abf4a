#include "tests_proto/negotiation/messages.hpp"

#include <algorithm>
#include <cassert>
#include <span>

#include "overlay/wire/core_messages.hpp"

namespace glasnode::proto::negotiation {

namespace {

constexpr std::size_t flow_spec_fields = 6;

// Wire codes of the shared enums, spelled out so that a reordering of those enums elsewhere
// cannot silently change the protocol.
std::uint8_t direction_code(direction d) {
    return d == direction::upload ? 0 : 1;
}
direction direction_of(std::uint64_t code) {
    return code == 0 ? direction::upload : direction::download;
}
std::uint8_t port_code(test_port p) {
    return p == test_port::bt ? 0 : 1;
}
test_port port_of(std::uint64_t code) {
    return code == 0 ? test_port::bt : test_port::neutral;
}
std::uint8_t kind_code(flow_kind k) {
    return k == flow_kind::bt ? 0 : 1;
}
flow_kind kind_of(std::uint64_t code) {
    return code == 0 ? flow_kind::bt : flow_kind::control;
}

void encode_spec(wire::packer& pk, const flow_spec& f) {
    pk.pack_array(flow_spec_fields);
    pk.pack_uint16(f.index);
    pk.pack_uint8(direction_code(f.dir));
    pk.pack_uint8(port_code(f.port));
    pk.pack_uint8(kind_code(f.kind));
    pk.pack_uint16(f.group);
    pk.pack_uint32(f.duration_ms);
}

result<flow_spec> decode_spec(const msgpack::object& array, const std::string& label) {
    wire::field_reader r(array, label, flow_spec_fields);
    flow_spec f;
    f.index = r.uint<std::uint16_t>("index");
    f.dir = direction_of(r.u64("direction", 1));
    f.port = port_of(r.u64("port", 1));
    f.kind = kind_of(r.u64("kind", 1));
    f.group = r.uint<std::uint16_t>("group");
    f.duration_ms = r.uint<std::uint32_t>("duration ms");
    if (auto s = r.finish(); !s)
        return s.err();
    return f;
}

void encode_measurements(wire::packer& pk, const std::vector<flow_measurement>& list) {
    pk.pack_array(1);
    pk.pack_array(static_cast<std::uint32_t>(list.size()));
    for (const flow_measurement& m : list)
        encode_measurement(pk, m);
}

result<std::vector<flow_measurement>>
decode_measurement_list(std::span<const msgpack::object> items, const std::string& label) {
    std::vector<flow_measurement> out;
    out.reserve(items.size());
    std::size_t samples = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto m = decode_measurement(items[i], label + " item " + std::to_string(i));
        if (!m)
            return m.err();
        samples += m->samples.size();
        if (samples > max_samples_per_message) {
            return make_error(errc::limit_exceeded, label + ": more than " +
                                                        std::to_string(max_samples_per_message) +
                                                        " samples in one message");
        }
        out.push_back(std::move(*m));
    }
    return out;
}

result<std::vector<flow_measurement>> decode_measurements(const msgpack::object& body,
                                                          std::string_view message) {
    wire::field_reader r(body, message, 1);
    const auto items = r.array("measurements", max_schedule_flows);
    if (auto s = r.finish(); !s)
        return s.err();
    return decode_measurement_list(items, r.last_field_label());
}

} // namespace

void negotiate::encode(wire::packer& pk) const {
    pk.pack_array(max_rate_bps > 0 ? 4 : 3);
    wire::pack_str(pk, test_name);
    pk.pack_uint32(test_version);
    pk.pack_array(static_cast<std::uint32_t>(schedule.size()));
    for (const flow_spec& f : schedule)
        encode_spec(pk, f);
    if (max_rate_bps > 0)
        pk.pack_uint64(max_rate_bps);
}

result<negotiate> negotiate::decode(const msgpack::object& body) {
    wire::field_reader r(body, name, 3, 4);
    negotiate m;
    m.test_name = r.str("test name", max_test_name);
    m.test_version = r.uint<std::uint32_t>("test version");
    const auto flows = r.array("schedule", max_schedule_flows);
    const std::string label = r.last_field_label();
    if (r.ok() && r.remaining() > 0)
        m.max_rate_bps = r.uint<std::uint64_t>("max rate");
    if (auto s = r.finish(); !s)
        return s.err();
    if (!wire::is_printable_ascii(m.test_name)) {
        return make_error(errc::protocol_error,
                          "negotiate field 0 (test name): non-printable byte in test name");
    }
    m.schedule.reserve(flows.size());
    for (std::size_t i = 0; i < flows.size(); ++i) {
        auto f = decode_spec(flows[i], label + " item " + std::to_string(i));
        if (!f)
            return f.err();
        m.schedule.push_back(*f);
    }
    return m;
}

void queue_status::encode(wire::packer& pk) const {
    pk.pack_array(2);
    pk.pack_uint32(position);
    pk.pack_uint32(queue_length);
}

result<queue_status> queue_status::decode(const msgpack::object& body) {
    wire::field_reader r(body, name, 2);
    queue_status m;
    m.position = static_cast<std::uint32_t>(r.u64("position", max_queue_report));
    m.queue_length = static_cast<std::uint32_t>(r.u64("queue length", max_queue_report));
    if (auto s = r.finish(); !s)
        return s.err();
    if (m.position == 0 || m.position > m.queue_length) {
        return make_error(errc::protocol_error,
                          "queue_status: position " + std::to_string(m.position) +
                              " outside the queue of " + std::to_string(m.queue_length));
    }
    return m;
}

void grant::encode(wire::packer& pk) const {
    pk.pack_array(4);
    pk.pack_bin(static_cast<std::uint32_t>(token.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(token.data()),
                     static_cast<std::uint32_t>(token.size()));
    pk.pack_uint64(valid_for_ms);
    pk.pack_uint16(bt_port);
    pk.pack_uint16(neutral_port);
}

result<grant> grant::decode(const msgpack::object& body) {
    wire::field_reader r(body, name, 4);
    grant m;
    m.token = r.fixed_bin<token_size>("token");
    m.valid_for_ms = r.u64("valid for ms", static_cast<std::uint64_t>(max_grant_validity.count()));
    m.bt_port = r.uint<std::uint16_t>("bt port");
    m.neutral_port = r.uint<std::uint16_t>("neutral port");
    if (auto s = r.finish(); !s)
        return s.err();
    return m;
}

void collect::encode(wire::packer& pk) const {
    encode_measurements(pk, measurements);
}

result<collect> collect::decode(const msgpack::object& body) {
    auto list = decode_measurements(body, name);
    if (!list)
        return list.err();
    return collect{std::move(*list)};
}

void collect_reply::encode(wire::packer& pk) const {
    pk.pack_array(unidentified ? 4 : 1);
    pk.pack_array(static_cast<std::uint32_t>(measurements.size()));
    for (const flow_measurement& m : measurements)
        encode_measurement(pk, m);
    if (unidentified) {
        pk.pack(unidentified->connections);
        pk.pack(unidentified->resets_received);
        pk.pack(unidentified->could_reset_peer);
    }
}

result<collect_reply> collect_reply::decode(const msgpack::object& body) {
    wire::field_reader r(body, name, 1, 4);
    const auto items = r.array("measurements", max_schedule_flows);
    const std::string label = r.last_field_label();
    std::optional<diff::unidentified_connections> unidentified;
    if (r.ok() && r.remaining() > 0) {
        if (r.remaining() != 3)
            return make_error(errc::protocol_error, std::string(name) +
                                                        ": the unidentified connections are three "
                                                        "counts (fields 1-3), not " +
                                                        std::to_string(r.remaining()));
        diff::unidentified_connections u;
        u.connections = r.uint<std::uint32_t>("unidentified connections");
        u.resets_received = r.uint<std::uint32_t>("unidentified resets_received");
        u.could_reset_peer = r.uint<std::uint32_t>("unidentified could_reset_peer");
        unidentified = u;
    }
    if (auto s = r.finish(); !s)
        return s.err();
    auto list = decode_measurement_list(items, label);
    if (!list)
        return list.err();
    return collect_reply{std::move(*list), unidentified};
}

void cancel::encode(wire::packer& pk) const {
    pk.pack_array(0);
}

result<cancel> cancel::decode(const msgpack::object& body) {
    wire::field_reader r(body, name, 0);
    if (auto s = r.finish(); !s)
        return s.err();
    return cancel{};
}

status add_negotiation_messages(wire::message_registry& registry) {
    for (status s :
         {registry.add<negotiate>(), registry.add<queue_status>(), registry.add<grant>(),
          registry.add<collect>(), registry.add<collect_reply>(), registry.add<cancel>()}) {
        if (!s)
            return s;
    }
    return {};
}

wire::message_registry agent_to_provider_registry() {
    wire::message_registry r;
    // Fresh registry: the three distinct types cannot collide.
    [[maybe_unused]] const bool ok =
        r.add<negotiate>().ok() && r.add<collect>().ok() && r.add<cancel>().ok();
    assert(ok);
    return r;
}

wire::message_registry provider_to_agent_registry() {
    wire::message_registry r;
    [[maybe_unused]] const bool ok = r.add<queue_status>().ok() && r.add<grant>().ok() &&
                                     r.add<collect_reply>().ok() &&
                                     r.add<wire::error_message>().ok();
    assert(ok);
    return r;
}

} // namespace glasnode::proto::negotiation
