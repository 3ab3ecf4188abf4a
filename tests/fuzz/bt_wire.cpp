// libFuzzer target for the peer-wire codec. Byte 0 sets the mode (bit 1), whether the stream
// starts with a handshake (bit 0) and how the stream is split; the rest is the input.
//   raw (bit 1 clear): the rest is arbitrary bytes, parsed as both flow kinds, whole and split.
//     The parser must never crash, never buffer beyond its bounds, give the same events and the
//     same piece payload whatever the split, and account every payload byte it delivers.
//   encoded (bit 1 set): the rest is a script of messages (see encode_script) written with the
//     encoders, for both flow kinds, and parsed back in pieces of varying size with payload
//     delivery on. Every message must come back as it was written, in order, and every piece's
//     block bytes must equal the bytes that were encoded.
// Any violation aborts.
#include "tests_proto/diff/bt_wire.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"

using namespace glasnode;
using namespace glasnode::proto::diff;

namespace {

void require(bool condition) {
    if (!condition)
        std::abort();
}

bool same_event(const wire_event& a, const wire_event& b) {
    return a.type == b.type && a.raw_id == b.raw_id && a.index == b.index && a.begin == b.begin &&
           a.length == b.length && a.bitfield == b.bitfield;
}

// The events without piece_data fragments.
std::vector<wire_event> messages_of(const std::vector<wire_event>& events) {
    std::vector<wire_event> out;
    for (const auto& e : events) {
        if (e.type != message_type::piece_data)
            out.push_back(e);
    }
    return out;
}

bool same_messages(const std::vector<wire_event>& a, const std::vector<wire_event>& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), same_event);
}

// Checks the piece_data fragments of `events` against their piece headers and returns each
// piece's block bytes as they appeared on the wire (one entry per piece header).
std::vector<bytes> piece_blocks(const std::vector<wire_event>& events, byte_view input,
                                std::uint64_t payload_bytes) {
    std::vector<bytes> blocks;
    std::uint32_t expected_length = 0;
    std::uint64_t delivered = 0;
    for (const auto& e : events) {
        if (e.type == message_type::piece) {
            // The previous piece must be complete before another message starts.
            require(blocks.empty() || blocks.back().size() == expected_length);
            blocks.emplace_back();
            expected_length = e.length;
            continue;
        }
        if (e.type != message_type::piece_data) {
            require(blocks.empty() || blocks.back().size() == expected_length);
            continue;
        }
        require(!blocks.empty());
        require(e.length == e.data.size() && e.length > 0);
        require(e.begin == blocks.back().size());
        require(blocks.back().size() + e.length <= expected_length);
        // The fragment points into the caller's buffer, never into a copy.
        require(e.data.data() >= input.data() &&
                e.data.data() + e.data.size() <= input.data() + input.size());
        blocks.back().insert(blocks.back().end(), e.data.begin(), e.data.end());
        delivered += e.length;
    }
    require(delivered == payload_bytes);
    return blocks;
}

void raw_mode(std::uint8_t control, byte_view in) {
    const bool expect_handshake = (control & 1) != 0;
    const std::size_t split = control % in.size();
    for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
        wire_parser whole(kind, expect_handshake);
        std::vector<wire_event> a;
        const auto sa = whole.feed(in, a);

        wire_parser parts(kind, expect_handshake);
        std::vector<wire_event> b;
        auto sb = parts.feed(in.first(split), b);
        if (sb)
            sb = parts.feed(in.subspan(split), b);

        require(sa.ok() == sb.ok() && same_messages(a, b));
        require(whole.payload_bytes() == parts.payload_bytes());
        for (const auto& e : a) {
            require(e.type != message_type::piece_data);
            require(e.bitfield.size() <= default_max_bitfield_bytes);
        }

        // With payload delivery the messages are the same, and the fragments of each piece
        // add up to the same bytes whatever the split.
        const parser_limits deliver{.deliver_payload = true};
        wire_parser pw(kind, expect_handshake, deliver);
        std::vector<wire_event> c;
        const auto sc = pw.feed(in, c);
        wire_parser pp(kind, expect_handshake, deliver);
        std::vector<wire_event> d;
        auto sd = pp.feed(in.first(split), d);
        if (sd)
            sd = pp.feed(in.subspan(split), d);
        require(sc.ok() == sa.ok() && sd.ok() == sa.ok());
        require(same_messages(messages_of(c), a) && same_messages(messages_of(d), a));
        require(pw.payload_bytes() == whole.payload_bytes());
        require(piece_blocks(c, in, pw.payload_bytes()) == piece_blocks(d, in, pp.payload_bytes()));
    }
}

constexpr std::size_t max_ops = 48;
constexpr std::size_t max_payload = 128 * 1024; // keeps one input fast

struct script {
    handshake hs;
    std::vector<wire_event> messages; // what the parser must report, piece_data left out
    std::vector<bytes> blocks;        // each piece's block, plain
    std::uint64_t payload = 0;
    // How the stream is encoded: the same for both kinds, so that only the mask differs.
    std::vector<std::uint8_t> ops;
    std::vector<bytes> bodies; // bitfield bits, `other` bodies and piece blocks, in op order
};

// Script: [handshake: reserved 8, info-hash 20, peer id 20 when expected], then ops. Each op is
// one byte choosing the message (and for a piece, how it is written), then its fields.
script read_script(fuzz::fuzz_input& r, bool expect_handshake) {
    script s;
    if (expect_handshake) {
        const byte_view h = r.take(48);
        std::uint8_t raw[48]{};
        std::memcpy(raw, h.data(), h.size());
        std::memcpy(s.hs.reserved.data(), raw, 8);
        std::memcpy(s.hs.info_hash.data(), raw + 8, 20);
        std::memcpy(s.hs.peer_id.data(), raw + 28, 20);
    }
    while (!r.done() && s.messages.size() < max_ops) {
        const std::uint8_t op = r.u8();
        wire_event e;
        bytes body;
        switch (op % 13) {
        case 0:
            e.type = message_type::keep_alive;
            break;
        case 1:
        case 2:
        case 3:
        case 4:
            e.raw_id = static_cast<std::uint8_t>(op % 13 - 1);
            e.type = static_cast<message_type>(static_cast<std::uint8_t>(message_type::choke) +
                                               e.raw_id);
            break;
        case 5:
            e.type = message_type::have;
            e.raw_id = static_cast<std::uint8_t>(message_id::have);
            e.index = r.u32();
            break;
        case 6: {
            e.type = message_type::bitfield;
            e.raw_id = static_cast<std::uint8_t>(message_id::bitfield);
            const byte_view bits = r.take(r.u8());
            e.bitfield.assign(bits.begin(), bits.end());
            body = e.bitfield;
            break;
        }
        case 7:
        case 8:
        case 12: // a request written by write_request
            e.type = op % 13 == 8 ? message_type::cancel : message_type::request;
            e.raw_id =
                static_cast<std::uint8_t>(op % 13 == 8 ? message_id::cancel : message_id::request);
            e.index = r.u32();
            e.begin = r.u32();
            e.length = r.u32();
            break;
        case 9:
            e.type = message_type::port;
            e.raw_id = static_cast<std::uint8_t>(message_id::port);
            e.index = r.u16();
            break;
        case 10: {
            e.type = message_type::piece;
            e.raw_id = static_cast<std::uint8_t>(message_id::piece);
            e.index = r.u32();
            e.begin = r.u32();
            const std::size_t room = s.payload < max_payload ? max_payload - s.payload : 0;
            const std::size_t length =
                std::min<std::size_t>(1 + r.u16() % block_size, std::max<std::size_t>(1, room));
            e.length = static_cast<std::uint32_t>(length);
            // The script's bytes first, then a pattern seeded by the op, so that full blocks
            // need no full-size input.
            const byte_view given = r.take(length);
            body.assign(given.begin(), given.end());
            for (std::size_t i = body.size(); i < length; ++i)
                body.push_back(static_cast<std::uint8_t>(i * 131 + op));
            s.blocks.push_back(body);
            s.payload += length;
            break;
        }
        case 11: {
            e.type = message_type::other;
            e.raw_id = static_cast<std::uint8_t>(10 + r.u8() % 246);
            const byte_view b = r.take(r.u8());
            body.assign(b.begin(), b.end());
            e.length = static_cast<std::uint32_t>(body.size());
            break;
        }
        }
        s.ops.push_back(op);
        s.bodies.push_back(std::move(body));
        s.messages.push_back(std::move(e));
    }
    return s;
}

bytes encode(const script& s, bool expect_handshake, flow_kind kind) {
    bytes out;
    if (expect_handshake) {
        const handshake_bytes h = encode_handshake(s.hs, kind);
        out.insert(out.end(), h.begin(), h.end());
    }
    for (std::size_t i = 0; i < s.messages.size(); ++i) {
        const wire_event& e = s.messages[i];
        const bytes& body = s.bodies[i];
        const std::uint8_t op = s.ops[i];
        switch (e.type) {
        case message_type::keep_alive:
            append_keep_alive(out, kind);
            break;
        case message_type::choke:
        case message_type::unchoke:
        case message_type::interested:
        case message_type::not_interested:
            append_simple(out, static_cast<message_id>(e.raw_id), kind);
            break;
        case message_type::have:
            append_have(out, e.index, kind);
            break;
        case message_type::bitfield:
            append_bitfield(out, body, kind);
            break;
        case message_type::request:
            if (op % 13 == 12) {
                std::uint8_t m[request_message_size];
                write_request(m, e.index, e.begin, e.length, kind);
                out.insert(out.end(), m, m + sizeof m);
            } else {
                append_request(out, e.index, e.begin, e.length, kind);
            }
            break;
        case message_type::cancel:
            append_cancel(out, e.index, e.begin, e.length, kind);
            break;
        case message_type::port:
            append_port(out, static_cast<std::uint16_t>(e.index), kind);
            break;
        case message_type::piece:
            if ((op & 0x80) != 0) {
                // The flow engine's path: a header, then a block inverted beforehand.
                std::uint8_t h[piece_header_size];
                write_piece_header(h, e.index, e.begin, e.length, kind);
                out.insert(out.end(), h, h + sizeof h);
                const std::size_t at = out.size();
                out.insert(out.end(), body.begin(), body.end());
                apply_mask(std::span<std::uint8_t>(out.data() + at, body.size()), kind);
            } else {
                append_piece(out, e.index, e.begin, body, kind);
            }
            break;
        case message_type::other: {
            // No encoder for messages the codec does not interpret: written by hand.
            const std::size_t at = out.size();
            const std::uint32_t n = static_cast<std::uint32_t>(1 + body.size());
            const std::uint8_t prefix[5] = {
                static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n), e.raw_id};
            out.insert(out.end(), prefix, prefix + sizeof prefix);
            out.insert(out.end(), body.begin(), body.end());
            apply_mask(std::span<std::uint8_t>(out.data() + at, out.size() - at), kind);
            break;
        }
        case message_type::piece_data:
            std::abort();
        }
    }
    return out;
}

// Piece sizes from a splitmix64 stream seeded by the input: 1 byte up to a little over a block.
class chunker {
public:
    explicit chunker(std::uint64_t seed) : m_state(seed) {}
    std::size_t next() {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        // Mostly small pieces, to cut headers and prefixes everywhere; sometimes large ones.
        return (z & 3) == 0 ? 1 + (z >> 8) % (block_size + 64) : 1 + (z >> 8) % 24;
    }

private:
    std::uint64_t m_state;
};

void encoded_mode(std::uint8_t control, byte_view in) {
    const bool expect_handshake = (control & 1) != 0;
    fuzz::fuzz_input r(in);
    const script s = read_script(r, expect_handshake);
    std::uint64_t seed = control;
    for (std::size_t i = 0; i < std::min<std::size_t>(in.size(), 8); ++i)
        seed = seed << 8 | in[i];

    for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
        const bytes stream = encode(s, expect_handshake, kind);

        wire_parser p(kind, expect_handshake, parser_limits{.deliver_payload = true});
        std::vector<wire_event> events;
        chunker sizes(seed);
        for (std::size_t at = 0; at < stream.size();) {
            const std::size_t n = std::min(sizes.next(), stream.size() - at);
            require(p.feed(byte_view(stream).subspan(at, n), events).ok());
            at += n;
        }
        require(!p.failed() && p.at_message_boundary());
        require(p.handshake_done());
        if (expect_handshake) {
            const handshake& got = p.peer_handshake();
            require(got.reserved == s.hs.reserved && got.info_hash == s.hs.info_hash &&
                    got.peer_id == s.hs.peer_id);
        }
        require(same_messages(messages_of(events), s.messages));
        require(p.payload_bytes() == s.payload);

        std::vector<bytes> blocks = piece_blocks(events, stream, p.payload_bytes());
        require(blocks.size() == s.blocks.size());
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            apply_mask(blocks[i], kind);
            require(blocks[i] == s.blocks[i]);
        }

        // The fast path (no delivery) in one call agrees.
        wire_parser fast(kind, expect_handshake);
        std::vector<wire_event> plain;
        require(fast.feed(stream, plain).ok());
        require(same_messages(plain, s.messages));
        require(fast.payload_bytes() == s.payload);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const byte_view in(data + 1, size - 1);
    if ((data[0] & 2) == 0)
        raw_mode(data[0], in);
    else
        encoded_mode(data[0], in);
    return 0;
}
