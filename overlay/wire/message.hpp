// The message envelope carried in every control-channel frame payload, and the strict
// positional field reader typed messages decode with.
//
// Wire form: a msgpack array [protocol version (uint), message type (uint16), body], where the
// body is a msgpack array of positional fields (never a map: field order is the schema).
//
// Message type numbering (uint16). Each layer owns a range so that protocols added later in
// other folders never collide; a layer registers its own types in a message_registry.
//   0x0000            reserved, never valid
//   0x0001 - 0x00ff   overlay core: channel handshake, ping/pong, error (core_messages.hpp)
//   0x0100 - 0x01ff   negotiation (tests_proto)
//   0x0200 - 0x02ff   firewall check
//   0x0300 - 0x03ff   collect: pushing feeds to collectors
//   0x0400 - 0x04ff   gossip and collector anti-entropy
//   0x0500 - 0xefff   unassigned: give a new layer a whole 0x100 block and list it here
//   0xf000 - 0xffff   experimental: never sent by a released build
//
// Typed messages are plain structs of this shape:
//   struct ping {
//       static constexpr message_type type_id = 0x0003;
//       static constexpr std::string_view name = "ping";
//       std::uint64_t nonce = 0;
//       void encode(packer& pk) const;                          // packs ONE array: the body
//       static result<ping> decode(const msgpack::object& body); // body is an array
//   };
//
// Errors: decoding never throws. Malformed msgpack, trailing bytes, a wrong envelope shape and
// an unknown message type are errc::protocol_error; a size, count or depth over the limits is
// errc::limit_exceeded; an envelope version other than protocol_version is
// errc::unsupported_version. Reasons name the message and field ("ping field 0 (nonce):
// expected uint") and never echo peer-supplied bytes.
//
// Thread-safety: all types are plain values; a registry that is no longer modified may be
// read from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "overlay/wire/bytes.hpp"
#include "storage/result.hpp"

namespace glasnode::wire {

using message_type = std::uint16_t;

// Version of the envelope and of every message schema in it. A schema change that an older
// node cannot read bumps it.
inline constexpr std::uint64_t protocol_version = 1;

struct type_range {
    message_type first;
    message_type last;
    std::string_view layer;
};

inline constexpr std::array<type_range, 7> message_type_ranges{{
    {0x0001, 0x00ff, "core"},
    {0x0100, 0x01ff, "negotiation"},
    {0x0200, 0x02ff, "firewall"},
    {0x0300, 0x03ff, "collect"},
    {0x0400, 0x04ff, "gossip"},
    {0x0500, 0xefff, "unassigned"},
    {0xf000, 0xffff, "experimental"},
}};

// The layer owning `type` ("reserved" for 0).
std::string_view message_type_layer(message_type type) noexcept;

// Bounds applied while parsing untrusted msgpack (msgpack::unpack_limit). msgpack-c allocates
// an array's declared element count (24 bytes each) before reading the elements, so max_array
// must stay modest: one decode then uses at most about 24 x payload size plus
// max_depth x max_array x 24 bytes (about 200 KiB with the defaults).
struct decode_limits {
    std::size_t max_depth = 8;        // nesting of arrays/maps, the envelope itself included
    std::size_t max_array = 1024;     // elements in one array
    std::size_t max_map = 64;         // pairs in one map (no core message uses maps)
    std::size_t max_str = 64 * 1024;  // bytes in one str
    std::size_t max_bin = 256 * 1024; // bytes in one bin
    std::size_t max_ext = 0;          // ext types are not used: 0 rejects every ext
};

// Output adaptor so msgpack::packer appends straight into a glasnode::bytes.
class byte_sink {
public:
    explicit byte_sink(bytes& out) noexcept : m_out(&out) {}
    void write(const char* data, std::size_t size) {
        m_out->insert(m_out->end(), reinterpret_cast<const std::uint8_t*>(data),
                      reinterpret_cast<const std::uint8_t*>(data) + size);
    }

private:
    bytes* m_out;
};

using packer = msgpack::packer<byte_sink>;

// Appends the envelope [protocol_version, M::type_id, body] to `out`.
// Text a peer sends that may end up in a log line or on a terminal: printable ASCII only.
constexpr bool is_printable_ascii(char c) noexcept {
    return c >= 0x20 && c < 0x7f;
}
constexpr bool is_printable_ascii(std::string_view text) noexcept {
    return std::all_of(text.begin(), text.end(), [](char c) { return is_printable_ascii(c); });
}

// Packs `text` as one msgpack str.
inline void pack_str(packer& pk, std::string_view text) {
    pk.pack_str(static_cast<std::uint32_t>(text.size()));
    pk.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

template <class M>
void append_message(bytes& out, const M& message) {
    byte_sink sink(out);
    packer pk(sink);
    pk.pack_array(3);
    pk.pack_uint64(protocol_version);
    pk.pack_uint16(M::type_id);
    message.encode(pk);
}

template <class M>
bytes encode_message(const M& message) {
    bytes out;
    append_message(out, message);
    return out;
}

// The message types a decoder accepts, with names for log lines. Each layer adds its own
// (add<M>() for typed messages).
class message_registry {
public:
    // errc::invalid_argument for type 0 or a type already registered.
    status add(message_type type, std::string_view name);
    template <class M>
    status add() {
        return add(M::type_id, M::name);
    }
    bool contains(message_type type) const noexcept;
    // The registered name, or "" for an unknown type.
    std::string_view name(message_type type) const noexcept;
    std::size_t size() const noexcept { return m_names.size(); }
    // Registered types in ascending order (fuzzers and diagnostics iterate them).
    const std::map<message_type, std::string>& types() const noexcept { return m_names; }

private:
    std::map<message_type, std::string> m_names;
};

class envelope;

// Decodes one frame payload into an envelope whose type is registered in `known`.
result<envelope> decode_envelope(byte_view payload, const message_registry& known,
                                 const decode_limits& limits = {});
// Same, accepting only `type` (named `name` in reasons); any other type is a protocol_error.
result<envelope> decode_envelope_of(byte_view payload, message_type type, std::string_view name,
                                    const decode_limits& limits = {});

// A decoded envelope. Owns the parsed msgpack objects (str/bin are copied out of the payload,
// so the payload may be dropped). Movable, not copyable.
class envelope {
public:
    std::uint64_t version() const noexcept { return m_version; }
    message_type type() const noexcept { return m_type; }
    // Always a msgpack array.
    const msgpack::object& body() const noexcept { return m_body; }

private:
    friend result<envelope> decode_envelope(byte_view, const message_registry&,
                                            const decode_limits&);
    friend result<envelope> decode_envelope_of(byte_view, message_type, std::string_view,
                                               const decode_limits&);
    envelope() = default;
    msgpack::object_handle m_handle;
    std::uint64_t m_version = 0;
    message_type m_type = 0;
    msgpack::object m_body;
};

// The typed body of an envelope; errc::protocol_error if the envelope holds another type.
template <class M>
result<M> decode_body(const envelope& env) {
    if (env.type() != M::type_id) {
        return make_error(errc::protocol_error, "expected " + std::string(M::name) + " (type " +
                                                    std::to_string(M::type_id) + "), got type " +
                                                    std::to_string(env.type()));
    }
    return M::decode(env.body());
}

// Decodes a payload that must hold an M.
template <class M>
result<M> decode_message(byte_view payload, const decode_limits& limits = {}) {
    auto env = decode_envelope_of(payload, M::type_id, M::name, limits);
    if (!env)
        return env.err();
    return M::decode(env->body());
}

// Strict positional reader over one msgpack array (a message body or a nested array).
// Each read consumes the next field; the first failure is kept (later reads return empty
// values and change nothing) and reported by finish(), which also rejects unread fields.
// Reasons look like "ping field 0 (nonce): expected uint".
class field_reader {
public:
    // The array must hold between min_fields and max_fields elements. `label` names the
    // message or nested array in reasons ("ping", "negotiate field 2 (params) item 5").
    field_reader(const msgpack::object& array, std::string_view label, std::size_t min_fields,
                 std::size_t max_fields);
    field_reader(const msgpack::object& array, std::string_view label, std::size_t fields)
        : field_reader(array, label, fields, fields) {}

    std::uint64_t u64(std::string_view name,
                      std::uint64_t max = std::numeric_limits<std::uint64_t>::max());
    template <class T>
    T uint(std::string_view name) {
        return static_cast<T>(u64(name, std::numeric_limits<T>::max()));
    }
    std::int64_t i64(std::string_view name);
    bool boolean(std::string_view name);
    // A str of at most max_size bytes (errc::limit_exceeded above it). Not checked for UTF-8.
    std::string str(std::string_view name, std::size_t max_size);
    bytes bin(std::string_view name, std::size_t max_size);
    // A bin of exactly N bytes (keys, nonces, signatures).
    template <std::size_t N>
    std::array<std::uint8_t, N> fixed_bin(std::string_view name) {
        std::array<std::uint8_t, N> out{};
        const msgpack::object* o = next_bin_exact(name, N);
        if (o != nullptr && N > 0) {
            std::copy_n(reinterpret_cast<const std::uint8_t*>(o->via.bin.ptr), N, out.begin());
        }
        return out;
    }
    // The elements of a nested array of at most max_elements; read each with its own
    // field_reader (label it with item_label()).
    std::span<const msgpack::object> array(std::string_view name, std::size_t max_elements);
    // True (and the field consumed) if the next field is nil: optional fields.
    bool nil(std::string_view name);

    // Fields not read yet.
    std::size_t remaining() const noexcept;
    bool ok() const noexcept { return !m_error.has_value(); }
    // "<label> field <index> (<name>)" for the field read last: labels for nested readers.
    std::string last_field_label() const;
    // The first error, or errc::protocol_error if fields were left unread.
    status finish();

private:
    const msgpack::object* next(std::string_view name);
    // The next field if it has `type`; otherwise fails with `expected` and returns nullptr.
    const msgpack::object* next_of(std::string_view name, msgpack::type::object_type type,
                                   std::string_view expected);
    const msgpack::object* next_bin_exact(std::string_view name, std::size_t size);
    // Fails on the field just read (its index in the reason).
    void reject(errc code, std::string_view name, std::string_view what);
    void fail(errc code, std::string_view name, std::string_view what);

    const msgpack::object* m_items = nullptr;
    std::size_t m_count = 0;
    std::size_t m_index = 0;
    std::string m_label;
    std::string m_last_name;
    std::optional<error> m_error;
};

} // namespace glasnode::wire
