#include "overlay/wire/message.hpp"

#include <exception>
#include <new>
#include <string>

namespace glasnode::wire {

std::string_view message_type_layer(message_type type) noexcept {
    for (const type_range& r : message_type_ranges) {
        if (type >= r.first && type <= r.last)
            return r.layer;
    }
    return "reserved";
}

status message_registry::add(message_type type, std::string_view name) {
    if (type == 0)
        return make_error(errc::invalid_argument, "message type 0 is reserved");
    auto [it, inserted] = m_names.emplace(type, std::string(name));
    if (!inserted) {
        return make_error(errc::invalid_argument, "message type " + std::to_string(type) + " (" +
                                                      std::string(name) +
                                                      ") is already registered as " + it->second);
    }
    return {};
}

bool message_registry::contains(message_type type) const noexcept {
    return m_names.find(type) != m_names.end();
}

std::string_view message_registry::name(message_type type) const noexcept {
    auto it = m_names.find(type);
    return it == m_names.end() ? std::string_view{} : std::string_view{it->second};
}

namespace {

std::string type_text(message_type type) {
    return std::to_string(type) + " (" + std::string(message_type_layer(type)) + " range)";
}

// Parses the whole payload into one msgpack object under `limits`; every msgpack exception
// stops here.
result<msgpack::object_handle> unpack_bounded(byte_view payload, const decode_limits& limits,
                                              std::string_view what) {
    const std::string prefix = std::string(what) + ": ";
    if (payload.empty())
        return make_error(errc::protocol_error, prefix + "empty payload");
    const msgpack::unpack_limit limit(limits.max_array, limits.max_map, limits.max_str,
                                      limits.max_bin, limits.max_ext, limits.max_depth);
    std::size_t offset = 0;
    msgpack::object_handle handle;
    try {
        handle = msgpack::unpack(reinterpret_cast<const char*>(payload.data()), payload.size(),
                                 offset, nullptr, nullptr, limit);
    } catch (const msgpack::array_size_overflow&) {
        return make_error(errc::limit_exceeded, prefix + "an array has more than " +
                                                    std::to_string(limits.max_array) + " elements");
    } catch (const msgpack::map_size_overflow&) {
        return make_error(errc::limit_exceeded, prefix + "a map has more than " +
                                                    std::to_string(limits.max_map) + " entries");
    } catch (const msgpack::str_size_overflow&) {
        return make_error(errc::limit_exceeded, prefix + "a str is longer than " +
                                                    std::to_string(limits.max_str) + " bytes");
    } catch (const msgpack::bin_size_overflow&) {
        return make_error(errc::limit_exceeded, prefix + "a bin is longer than " +
                                                    std::to_string(limits.max_bin) + " bytes");
    } catch (const msgpack::ext_size_overflow&) {
        return make_error(errc::limit_exceeded, prefix + "ext values are not accepted (limit " +
                                                    std::to_string(limits.max_ext) + " bytes)");
    } catch (const msgpack::depth_size_overflow&) {
        return make_error(errc::limit_exceeded,
                          prefix + "nesting deeper than " + std::to_string(limits.max_depth));
    } catch (const msgpack::insufficient_bytes&) {
        return make_error(errc::protocol_error, prefix + "truncated msgpack");
    } catch (const msgpack::parse_error&) {
        return make_error(errc::protocol_error, prefix + "malformed msgpack");
    } catch (const std::bad_alloc&) {
        return make_error(errc::limit_exceeded, prefix + "out of memory while decoding");
    } catch (const std::exception&) {
        return make_error(errc::protocol_error, prefix + "undecodable msgpack");
    }
    if (offset != payload.size()) {
        return make_error(errc::protocol_error, prefix + std::to_string(payload.size() - offset) +
                                                    " trailing bytes after the value");
    }
    return result<msgpack::object_handle>(std::move(handle));
}

} // namespace

namespace {

struct parsed_envelope {
    msgpack::object_handle handle;
    std::uint64_t version = 0;
    message_type type = 0;
    msgpack::object body;
};

// Shared by both public decoders: `accept` returns the name of an accepted type or nullopt.
template <class Accept>
result<parsed_envelope> parse_envelope(byte_view payload, const decode_limits& limits,
                                       const Accept& accept, std::string_view wanted) {
    auto handle = unpack_bounded(payload, limits, "message");
    if (!handle)
        return handle.err();
    const msgpack::object& root = handle->get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 3) {
        return make_error(errc::protocol_error, "message: envelope is not a 3-element array");
    }
    const msgpack::object& version = root.via.array.ptr[0];
    const msgpack::object& type = root.via.array.ptr[1];
    const msgpack::object& body = root.via.array.ptr[2];
    if (version.type != msgpack::type::POSITIVE_INTEGER) {
        return make_error(errc::protocol_error, "message: envelope version: expected uint");
    }
    if (version.via.u64 != protocol_version) {
        return make_error(errc::unsupported_version, "message: unsupported protocol version " +
                                                         std::to_string(version.via.u64) +
                                                         " (this node speaks " +
                                                         std::to_string(protocol_version) + ")");
    }
    if (type.type != msgpack::type::POSITIVE_INTEGER) {
        return make_error(errc::protocol_error, "message: envelope type: expected uint");
    }
    if (type.via.u64 > std::numeric_limits<message_type>::max()) {
        return make_error(errc::protocol_error,
                          "message: type " + std::to_string(type.via.u64) + " out of range");
    }
    const auto t = static_cast<message_type>(type.via.u64);
    const std::optional<std::string_view> name = accept(t);
    if (!name) {
        return make_error(errc::protocol_error,
                          wanted.empty() ? "message: unknown message type " + type_text(t)
                                         : "message: message type " + type_text(t) + " where " +
                                               std::string(wanted) + " was expected");
    }
    if (body.type != msgpack::type::ARRAY) {
        return make_error(errc::protocol_error, "message type " + std::to_string(t) + " (" +
                                                    std::string(*name) + "): body is not an array");
    }
    parsed_envelope p;
    p.version = version.via.u64;
    p.type = t;
    p.body = body;
    p.handle = std::move(*handle);
    return result<parsed_envelope>(std::move(p));
}

} // namespace

result<envelope> decode_envelope(byte_view payload, const message_registry& known,
                                 const decode_limits& limits) {
    auto p = parse_envelope(payload, limits,
                            [&](message_type t) -> std::optional<std::string_view> {
                                if (!known.contains(t))
                                    return std::nullopt;
                                return known.name(t);
                            },
                            {});
    if (!p)
        return p.err();
    envelope env;
    env.m_version = p->version;
    env.m_type = p->type;
    env.m_body = p->body;
    env.m_handle = std::move(p->handle);
    return result<envelope>(std::move(env));
}

result<envelope> decode_envelope_of(byte_view payload, message_type type, std::string_view name,
                                    const decode_limits& limits) {
    auto p = parse_envelope(
        payload, limits,
        [&](message_type t) -> std::optional<std::string_view> {
            if (t != type)
                return std::nullopt;
            return name;
        },
        name);
    if (!p)
        return p.err();
    envelope env;
    env.m_version = p->version;
    env.m_type = p->type;
    env.m_body = p->body;
    env.m_handle = std::move(p->handle);
    return result<envelope>(std::move(env));
}

field_reader::field_reader(const msgpack::object& array, std::string_view label,
                           std::size_t min_fields, std::size_t max_fields)
    : m_label(label) {
    if (array.type != msgpack::type::ARRAY) {
        m_error = make_error(errc::protocol_error, m_label + ": expected an array");
        return;
    }
    m_items = array.via.array.ptr;
    m_count = array.via.array.size;
    if (m_count < min_fields || m_count > max_fields) {
        std::string expected = std::to_string(min_fields);
        if (max_fields != min_fields)
            expected += " to " + std::to_string(max_fields);
        m_error = make_error(errc::protocol_error, m_label + ": expected " + expected +
                                                       (max_fields == 1 ? " field" : " fields") +
                                                       ", got " + std::to_string(m_count));
    }
}

void field_reader::fail(errc code, std::string_view name, std::string_view what) {
    if (m_error)
        return;
    m_error = make_error(code, m_label + " field " + std::to_string(m_index) + " (" +
                                   std::string(name) + "): " + std::string(what));
}

const msgpack::object* field_reader::next(std::string_view name) {
    if (m_error)
        return nullptr;
    if (m_index >= m_count) {
        fail(errc::protocol_error, name, "missing");
        return nullptr;
    }
    m_last_name = name;
    return &m_items[m_index++];
}

const msgpack::object* field_reader::next_of(std::string_view name, msgpack::type::object_type type,
                                             std::string_view expected) {
    const msgpack::object* o = next(name);
    if (o == nullptr)
        return nullptr;
    if (o->type != type) {
        reject(errc::protocol_error, name, expected);
        return nullptr;
    }
    return o;
}

void field_reader::reject(errc code, std::string_view name, std::string_view what) {
    --m_index; // the reason names the field just read
    fail(code, name, what);
}

std::uint64_t field_reader::u64(std::string_view name, std::uint64_t max) {
    const msgpack::object* o = next_of(name, msgpack::type::POSITIVE_INTEGER, "expected uint");
    if (o == nullptr)
        return 0;
    if (o->via.u64 > max) {
        reject(errc::protocol_error, name, "value above " + std::to_string(max));
        return 0;
    }
    return o->via.u64;
}

std::int64_t field_reader::i64(std::string_view name) {
    const msgpack::object* o = next(name);
    if (o == nullptr)
        return 0;
    if (o->type == msgpack::type::NEGATIVE_INTEGER)
        return o->via.i64;
    if (o->type == msgpack::type::POSITIVE_INTEGER &&
        o->via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(o->via.u64);
    }
    reject(errc::protocol_error, name, "expected int64");
    return 0;
}

bool field_reader::boolean(std::string_view name) {
    const msgpack::object* o = next_of(name, msgpack::type::BOOLEAN, "expected bool");
    return o != nullptr && o->via.boolean;
}

std::string field_reader::str(std::string_view name, std::size_t max_size) {
    const msgpack::object* o = next_of(name, msgpack::type::STR, "expected str");
    if (o == nullptr)
        return {};
    if (o->via.str.size > max_size) {
        reject(errc::limit_exceeded, name,
               "str of " + std::to_string(o->via.str.size) + " bytes exceeds " +
                   std::to_string(max_size));
        return {};
    }
    return std::string(o->via.str.ptr, o->via.str.size);
}

bytes field_reader::bin(std::string_view name, std::size_t max_size) {
    const msgpack::object* o = next_of(name, msgpack::type::BIN, "expected bin");
    if (o == nullptr)
        return {};
    if (o->via.bin.size > max_size) {
        reject(errc::limit_exceeded, name,
               "bin of " + std::to_string(o->via.bin.size) + " bytes exceeds " +
                   std::to_string(max_size));
        return {};
    }
    const auto* p = reinterpret_cast<const std::uint8_t*>(o->via.bin.ptr);
    return bytes(p, p + o->via.bin.size);
}

const msgpack::object* field_reader::next_bin_exact(std::string_view name, std::size_t size) {
    const msgpack::object* o = next_of(name, msgpack::type::BIN, "expected bin");
    if (o == nullptr)
        return nullptr;
    if (o->via.bin.size != size) {
        reject(errc::protocol_error, name,
               "expected " + std::to_string(size) + " bytes, got " +
                   std::to_string(o->via.bin.size));
        return nullptr;
    }
    return o;
}

std::span<const msgpack::object> field_reader::array(std::string_view name,
                                                     std::size_t max_elements) {
    const msgpack::object* o = next_of(name, msgpack::type::ARRAY, "expected array");
    if (o == nullptr)
        return {};
    if (o->via.array.size > max_elements) {
        reject(errc::limit_exceeded, name,
               "array of " + std::to_string(o->via.array.size) + " elements exceeds " +
                   std::to_string(max_elements));
        return {};
    }
    if (o->via.array.size == 0)
        return {};
    return {o->via.array.ptr, o->via.array.size};
}

bool field_reader::nil(std::string_view name) {
    if (m_error || m_index >= m_count)
        return false;
    if (m_items[m_index].type != msgpack::type::NIL)
        return false;
    m_last_name = name;
    ++m_index;
    return true;
}

std::size_t field_reader::remaining() const noexcept {
    return m_index < m_count ? m_count - m_index : 0;
}

std::string field_reader::last_field_label() const {
    const std::size_t index = m_index == 0 ? 0 : m_index - 1;
    return m_label + " field " + std::to_string(index) + " (" + m_last_name + ")";
}

status field_reader::finish() {
    if (m_error)
        return *m_error;
    if (m_index < m_count) {
        return make_error(errc::protocol_error, m_label + ": " + std::to_string(m_count - m_index) +
                                                    " unread fields after field " +
                                                    std::to_string(m_index));
    }
    return {};
}

} // namespace glasnode::wire
