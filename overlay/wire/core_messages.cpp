#include "overlay/wire/core_messages.hpp"

#include <cassert>

namespace glasnode::wire {

namespace {

template <std::size_t N>
void pack_fixed_bin(packer& pk, const std::array<std::uint8_t, N>& data) {
    pk.pack_bin(static_cast<std::uint32_t>(N));
    pk.pack_bin_body(reinterpret_cast<const char*>(data.data()), static_cast<std::uint32_t>(N));
}

} // namespace

void hello::encode(packer& pk) const {
    pk.pack_array(4);
    pk.pack_uint64(channel_version);
    pack_fixed_bin(pk, static_key);
    pack_fixed_bin(pk, kx_key);
    pack_fixed_bin(pk, nonce);
}

result<hello> hello::decode(const msgpack::object& body) {
    field_reader r(body, name, 4);
    hello m;
    m.channel_version = r.u64("channel version");
    m.static_key = r.fixed_bin<32>("static key");
    m.kx_key = r.fixed_bin<32>("kx key");
    m.nonce = r.fixed_bin<32>("nonce");
    if (auto s = r.finish(); !s)
        return s.err();
    return m;
}

void auth::encode(packer& pk) const {
    pk.pack_array(1);
    pack_fixed_bin(pk, signature);
}

result<auth> auth::decode(const msgpack::object& body) {
    field_reader r(body, name, 1);
    auth m;
    m.signature = r.fixed_bin<64>("signature");
    if (auto s = r.finish(); !s)
        return s.err();
    return m;
}

void ping::encode(packer& pk) const {
    pk.pack_array(1);
    pk.pack_uint64(nonce);
}

result<ping> ping::decode(const msgpack::object& body) {
    field_reader r(body, name, 1);
    ping m;
    m.nonce = r.u64("nonce");
    if (auto s = r.finish(); !s)
        return s.err();
    return m;
}

void pong::encode(packer& pk) const {
    pk.pack_array(1);
    pk.pack_uint64(nonce);
}

result<pong> pong::decode(const msgpack::object& body) {
    field_reader r(body, name, 1);
    pong m;
    m.nonce = r.u64("nonce");
    if (auto s = r.finish(); !s)
        return s.err();
    return m;
}

void error_message::encode(packer& pk) const {
    std::string text = reason.substr(0, max_reason);
    for (char& c : text) {
        if (!is_printable_ascii(c))
            c = '?';
    }
    pk.pack_array(2);
    pk.pack_uint16(code);
    pack_str(pk, text);
}

result<error_message> error_message::decode(const msgpack::object& body) {
    field_reader r(body, name, 2);
    error_message m;
    m.code = r.uint<std::uint16_t>("code");
    m.reason = r.str("reason", max_reason);
    if (auto s = r.finish(); !s)
        return s.err();
    if (!is_printable_ascii(m.reason)) {
        return make_error(errc::protocol_error,
                          "error field 1 (reason): non-printable byte in reason text");
    }
    return m;
}

status add_core_messages(message_registry& registry) {
    for (status s : {registry.add<hello>(), registry.add<auth>(), registry.add<ping>(),
                     registry.add<pong>(), registry.add<error_message>()}) {
        if (!s)
            return s;
    }
    return {};
}

message_registry core_message_registry() {
    message_registry r;
    // A fresh registry cannot hold duplicates of the core types.
    [[maybe_unused]] const status s = add_core_messages(r);
    assert(s.ok());
    return r;
}

} // namespace glasnode::wire
