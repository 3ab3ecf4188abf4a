#include "tests_proto/diff/bt_wire.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include <libtorrent/hasher.hpp>

namespace glasnode::proto::diff {

namespace {

void put_u32(std::uint8_t* p, std::uint32_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t get_u32(const std::uint8_t* p) noexcept {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
           std::uint32_t{p[3]};
}

void mask_range(std::uint8_t* p, std::size_t n, std::uint8_t mask) noexcept {
    if (mask == 0)
        return;
    for (std::size_t i = 0; i < n; ++i)
        p[i] ^= mask;
}

// Appends a message whose body is `id` followed by `fields` (already big-endian).
void append_message(bytes& out, std::uint8_t id, const std::uint8_t* fields, std::size_t n,
                    flow_kind kind) {
    const std::size_t start = out.size();
    out.resize(start + 5 + n);
    std::uint8_t* p = out.data() + start;
    put_u32(p, static_cast<std::uint32_t>(1 + n));
    p[4] = id;
    if (n > 0)
        std::memcpy(p + 5, fields, n);
    mask_range(p, 5 + n, wire_mask(kind));
}

void append_triple(bytes& out, message_id id, std::uint32_t a, std::uint32_t b, std::uint32_t c,
                   flow_kind kind) {
    std::uint8_t f[12];
    put_u32(f, a);
    put_u32(f + 4, b);
    put_u32(f + 8, c);
    append_message(out, static_cast<std::uint8_t>(id), f, sizeof f, kind);
}

std::string hex_byte(std::uint8_t b) {
    static constexpr char digits[] = "0123456789abcdef";
    return std::string{"0x"} + digits[b >> 4] + digits[b & 0xf];
}

} // namespace

std::string_view to_string(message_type type) noexcept {
    switch (type) {
    case message_type::keep_alive:
        return "keep_alive";
    case message_type::choke:
        return "choke";
    case message_type::unchoke:
        return "unchoke";
    case message_type::interested:
        return "interested";
    case message_type::not_interested:
        return "not_interested";
    case message_type::have:
        return "have";
    case message_type::bitfield:
        return "bitfield";
    case message_type::request:
        return "request";
    case message_type::piece:
        return "piece";
    case message_type::piece_data:
        return "piece_data";
    case message_type::cancel:
        return "cancel";
    case message_type::port:
        return "port";
    case message_type::other:
        return "other";
    }
    return "unknown";
}

info_hash_t info_hash_of_token(byte_view token) {
    lt::hasher h;
    h.update({reinterpret_cast<const char*>(token.data()), static_cast<long>(token.size())});
    const lt::sha1_hash digest = h.final();
    info_hash_t out{};
    std::memcpy(out.data(), digest.data(), out.size());
    return out;
}

std::array<std::uint8_t, 8> client_reserved_bytes() noexcept {
    std::array<std::uint8_t, 8> r{};
    r[5] = 0x10;        // BEP 10 extension protocol
    r[7] = 0x04 | 0x01; // BEP 6 fast extension, BEP 5 DHT
    return r;
}

peer_id_t make_peer_id(std::span<const std::uint8_t, 12> entropy) noexcept {
    static constexpr std::string_view prefix = "-GN0001-";
    static constexpr std::string_view alphabet =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    peer_id_t id{};
    std::memcpy(id.data(), prefix.data(), prefix.size());
    for (std::size_t i = 0; i < entropy.size(); ++i)
        id[prefix.size() + i] = static_cast<std::uint8_t>(alphabet[entropy[i] % alphabet.size()]);
    return id;
}

handshake_bytes encode_handshake(const handshake& h, flow_kind kind) noexcept {
    handshake_bytes out{};
    out[0] = static_cast<std::uint8_t>(protocol_name.size());
    std::memcpy(out.data() + 1, protocol_name.data(), protocol_name.size());
    std::memcpy(out.data() + 20, h.reserved.data(), 8);
    std::memcpy(out.data() + 28, h.info_hash.data(), 20);
    std::memcpy(out.data() + 48, h.peer_id.data(), 20);
    mask_range(out.data(), out.size(), wire_mask(kind));
    return out;
}

std::optional<flow_kind> classify_first_byte(std::uint8_t first) noexcept {
    if (first == protocol_name.size())
        return flow_kind::bt;
    if (first == static_cast<std::uint8_t>(~protocol_name.size()))
        return flow_kind::control;
    return std::nullopt;
}

result<handshake> decode_handshake(std::span<const std::uint8_t, handshake_size> in,
                                   flow_kind kind) {
    std::array<std::uint8_t, handshake_size> plain;
    std::memcpy(plain.data(), in.data(), handshake_size);
    mask_range(plain.data(), plain.size(), wire_mask(kind));
    if (plain[0] != protocol_name.size() ||
        std::memcmp(plain.data() + 1, protocol_name.data(), protocol_name.size()) != 0)
        return make_error(errc::protocol_error, std::string{"handshake of a "} +
                                                    std::string{to_string(kind)} +
                                                    " flow does not name \"BitTorrent protocol\"");
    handshake h;
    std::memcpy(h.reserved.data(), plain.data() + 20, 8);
    std::memcpy(h.info_hash.data(), plain.data() + 28, 20);
    std::memcpy(h.peer_id.data(), plain.data() + 48, 20);
    return h;
}

result<classified_handshake> classify_handshake(std::span<const std::uint8_t, handshake_size> in) {
    const auto kind = classify_first_byte(in[0]);
    if (!kind)
        return make_error(errc::protocol_error,
                          "first byte " + hex_byte(in[0]) +
                              " is neither BitTorrent (0x13) nor its inverse (0xec)");
    auto h = decode_handshake(in, *kind);
    if (!h)
        return h.err();
    return classified_handshake{*kind, *h};
}

void append_keep_alive(bytes& out, flow_kind kind) {
    const std::size_t start = out.size();
    out.resize(start + 4, wire_mask(kind)); // a zero length prefix
}

void append_simple(bytes& out, message_id id, flow_kind kind) {
    assert(static_cast<std::uint8_t>(id) <= static_cast<std::uint8_t>(message_id::not_interested));
    append_message(out, static_cast<std::uint8_t>(id), nullptr, 0, kind);
}

void append_have(bytes& out, std::uint32_t index, flow_kind kind) {
    std::uint8_t f[4];
    put_u32(f, index);
    append_message(out, static_cast<std::uint8_t>(message_id::have), f, sizeof f, kind);
}

void append_bitfield(bytes& out, byte_view bits, flow_kind kind) {
    append_message(out, static_cast<std::uint8_t>(message_id::bitfield), bits.data(), bits.size(),
                   kind);
}

void append_request(bytes& out, std::uint32_t index, std::uint32_t begin, std::uint32_t length,
                    flow_kind kind) {
    append_triple(out, message_id::request, index, begin, length, kind);
}

void append_cancel(bytes& out, std::uint32_t index, std::uint32_t begin, std::uint32_t length,
                   flow_kind kind) {
    append_triple(out, message_id::cancel, index, begin, length, kind);
}

void append_port(bytes& out, std::uint16_t port, flow_kind kind) {
    const std::uint8_t f[2] = {static_cast<std::uint8_t>(port >> 8),
                               static_cast<std::uint8_t>(port)};
    append_message(out, static_cast<std::uint8_t>(message_id::port), f, sizeof f, kind);
}

void append_piece(bytes& out, std::uint32_t index, std::uint32_t begin, byte_view block,
                  flow_kind kind) {
    assert(!block.empty() && block.size() <= block_size);
    const std::size_t start = out.size();
    out.resize(start + piece_header_size + block.size());
    write_piece_header(
        std::span<std::uint8_t, piece_header_size>(out.data() + start, piece_header_size), index,
        begin, static_cast<std::uint32_t>(block.size()), kind);
    std::uint8_t* p = out.data() + start + piece_header_size;
    std::memcpy(p, block.data(), block.size());
    mask_range(p, block.size(), wire_mask(kind));
}

void write_piece_header(std::span<std::uint8_t, piece_header_size> out, std::uint32_t index,
                        std::uint32_t begin, std::uint32_t length, flow_kind kind) noexcept {
    put_u32(out.data(), 9 + length);
    out[4] = static_cast<std::uint8_t>(message_id::piece);
    put_u32(out.data() + 5, index);
    put_u32(out.data() + 9, begin);
    mask_range(out.data(), out.size(), wire_mask(kind));
}

void write_request(std::span<std::uint8_t, request_message_size> out, std::uint32_t index,
                   std::uint32_t begin, std::uint32_t length, flow_kind kind) noexcept {
    put_u32(out.data(), 13);
    out[4] = static_cast<std::uint8_t>(message_id::request);
    put_u32(out.data() + 5, index);
    put_u32(out.data() + 9, begin);
    put_u32(out.data() + 13, length);
    mask_range(out.data(), out.size(), wire_mask(kind));
}

void apply_mask(std::span<std::uint8_t> data, flow_kind kind) noexcept {
    mask_range(data.data(), data.size(), wire_mask(kind));
}

wire_parser::wire_parser(flow_kind kind, bool expect_handshake, parser_limits limits)
    : m_kind(kind), m_mask(wire_mask(kind)), m_limits(limits),
      m_state(expect_handshake ? state::handshake : state::length) {}

bool wire_parser::at_message_boundary() const noexcept {
    return m_state == state::length && m_prefix_have == 0;
}

status wire_parser::fail(errc code, std::string reason) {
    m_error = make_error(code, std::move(reason));
    return *m_error;
}

status wire_parser::feed(byte_view in, std::vector<wire_event>& events) {
    if (m_error)
        return *m_error;
    while (!in.empty()) {
        switch (m_state) {
        case state::handshake: {
            const std::size_t take = std::min(handshake_size - m_hs_have, in.size());
            std::memcpy(m_hs_buf.data() + m_hs_have, in.data(), take);
            m_hs_have += take;
            in = in.subspan(take);
            if (m_hs_have < handshake_size)
                break;
            auto h = decode_handshake(m_hs_buf, m_kind);
            if (!h)
                return fail(h.err().code, h.err().reason);
            m_handshake = *h;
            m_state = state::length;
            break;
        }
        case state::length: {
            const std::size_t take = std::min<std::size_t>(4 - m_prefix_have, in.size());
            std::memcpy(m_prefix + m_prefix_have, in.data(), take);
            m_prefix_have += take;
            in = in.subspan(take);
            if (m_prefix_have < 4)
                break;
            m_prefix_have = 0;
            mask_range(m_prefix, 4, m_mask);
            const std::uint32_t n = get_u32(m_prefix);
            if (n == 0) {
                events.push_back(wire_event{});
                break;
            }
            if (n > max_message_length && n > 1 + m_limits.max_bitfield_bytes)
                return fail(errc::limit_exceeded, "message length " + std::to_string(n) +
                                                      " exceeds limit " +
                                                      std::to_string(max_message_length));
            m_body_length = n;
            m_body.clear();
            m_body_need = 1; // the id decides how much of the body is buffered
            m_state = state::body;
            break;
        }
        case state::body: {
            const std::size_t take = std::min(m_body_need, in.size());
            const std::size_t at = m_body.size();
            m_body.insert(m_body.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(take));
            mask_range(m_body.data() + at, take, m_mask);
            m_body_need -= take;
            in = in.subspan(take);
            if (m_body_need > 0)
                break;
            if (auto st = finish_body(events); !st)
                return st;
            break;
        }
        case state::block: {
            const std::size_t take = std::min<std::size_t>(m_block_left, in.size());
            if (m_limits.deliver_payload) {
                wire_event e;
                e.type = message_type::piece_data;
                e.begin = m_block_offset;
                e.length = static_cast<std::uint32_t>(take);
                e.data = in.first(take);
                events.push_back(std::move(e));
            }
            m_block_left -= static_cast<std::uint32_t>(take);
            m_block_offset += static_cast<std::uint32_t>(take);
            m_payload_bytes += take;
            in = in.subspan(take);
            if (m_block_left == 0)
                m_state = state::length;
            break;
        }
        case state::skip: {
            const std::size_t take = std::min<std::size_t>(m_skip_left, in.size());
            m_skip_left -= static_cast<std::uint32_t>(take);
            in = in.subspan(take);
            if (m_skip_left == 0)
                m_state = state::length;
            break;
        }
        }
    }
    return {};
}

// Called whenever m_body_need reaches 0: either the id byte alone has arrived (decide how much
// more to buffer) or the whole buffered part is complete.
status wire_parser::finish_body(std::vector<wire_event>& events) {
    const std::uint8_t id = m_body[0];
    const std::uint32_t n = m_body_length;
    auto expect = [&](std::uint32_t want) -> status {
        if (n != want)
            return fail(errc::protocol_error, std::string{"message id "} + std::to_string(id) +
                                                  " with length " + std::to_string(n) +
                                                  ", expected " + std::to_string(want));
        return {};
    };
    auto more = [&](std::size_t total) {
        // Asks for the rest of a buffered part of `total` bytes (id included).
        m_body_need = total - m_body.size();
        return m_body_need > 0;
    };

    wire_event e;
    e.raw_id = id;
    switch (id) {
    case static_cast<std::uint8_t>(message_id::choke):
    case static_cast<std::uint8_t>(message_id::unchoke):
    case static_cast<std::uint8_t>(message_id::interested):
    case static_cast<std::uint8_t>(message_id::not_interested):
        if (auto st = expect(1); !st)
            return st;
        e.type = static_cast<message_type>(static_cast<std::uint8_t>(message_type::choke) + id);
        break;
    case static_cast<std::uint8_t>(message_id::have):
        if (auto st = expect(5); !st)
            return st;
        if (more(5))
            return {};
        e.type = message_type::have;
        e.index = get_u32(m_body.data() + 1);
        break;
    case static_cast<std::uint8_t>(message_id::bitfield):
        if (n - 1 > m_limits.max_bitfield_bytes)
            return fail(errc::limit_exceeded, "bitfield of " + std::to_string(n - 1) +
                                                  " bytes exceeds limit " +
                                                  std::to_string(m_limits.max_bitfield_bytes));
        if (more(n))
            return {};
        e.type = message_type::bitfield;
        e.bitfield.assign(m_body.begin() + 1, m_body.end());
        break;
    case static_cast<std::uint8_t>(message_id::request):
    case static_cast<std::uint8_t>(message_id::cancel):
        if (auto st = expect(13); !st)
            return st;
        if (more(13))
            return {};
        e.type = id == static_cast<std::uint8_t>(message_id::request) ? message_type::request
                                                                      : message_type::cancel;
        e.index = get_u32(m_body.data() + 1);
        e.begin = get_u32(m_body.data() + 5);
        e.length = get_u32(m_body.data() + 9);
        break;
    case static_cast<std::uint8_t>(message_id::piece):
        if (n < 10 || n > max_message_length)
            return fail(errc::protocol_error, "piece message length " + std::to_string(n) +
                                                  " outside [10, " +
                                                  std::to_string(max_message_length) + "]");
        if (more(9))
            return {};
        e.type = message_type::piece;
        e.index = get_u32(m_body.data() + 1);
        e.begin = get_u32(m_body.data() + 5);
        e.length = n - 9;
        events.push_back(std::move(e));
        m_block_left = n - 9;
        m_block_offset = 0;
        m_state = state::block;
        return {};
    case static_cast<std::uint8_t>(message_id::port):
        if (auto st = expect(3); !st)
            return st;
        if (more(3))
            return {};
        e.type = message_type::port;
        e.index = std::uint32_t{m_body[1]} << 8 | m_body[2];
        break;
    default:
        if (n > max_message_length)
            return fail(errc::limit_exceeded, "message id " + std::to_string(id) + " of length " +
                                                  std::to_string(n) + " exceeds limit " +
                                                  std::to_string(max_message_length));
        e.type = message_type::other;
        e.length = n - 1;
        events.push_back(std::move(e));
        m_skip_left = n - 1;
        m_state = m_skip_left > 0 ? state::skip : state::length;
        return {};
    }
    events.push_back(std::move(e));
    m_state = state::length;
    return {};
}

} // namespace glasnode::proto::diff
