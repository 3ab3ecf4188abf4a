#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/wire/bytes.hpp"
#include "tests_proto/diff/bt_wire.hpp"

namespace glasnode::proto::diff {
namespace {

handshake sample_handshake() {
    handshake h;
    h.reserved = client_reserved_bytes();
    for (std::size_t i = 0; i < 20; ++i)
        h.info_hash[i] = static_cast<std::uint8_t>(0xa0 + i);
    const std::array<std::uint8_t, 12> entropy{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 200};
    h.peer_id = make_peer_id(entropy);
    return h;
}

bytes sample_block(std::size_t n) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::uint8_t>(i * 7 + 3);
    return b;
}

// Every message type the codec knows, plus an extension message it skips.
bytes sample_stream(flow_kind kind, bool with_handshake) {
    bytes out;
    if (with_handshake) {
        const auto hs = encode_handshake(sample_handshake(), kind);
        out.assign(hs.begin(), hs.end());
    }
    append_keep_alive(out, kind);
    append_simple(out, message_id::choke, kind);
    append_simple(out, message_id::unchoke, kind);
    append_simple(out, message_id::interested, kind);
    append_simple(out, message_id::not_interested, kind);
    append_have(out, 0x01020304, kind);
    const bytes bits{0xff, 0xfe, 0x80};
    append_bitfield(out, bits, kind);
    append_request(out, 7, 16384, 16384, kind);
    append_piece(out, 7, 16384, sample_block(block_size), kind);
    append_piece(out, 9, 0, sample_block(3), kind);
    append_cancel(out, 7, 32768, 16384, kind);
    append_port(out, 6881, kind);
    // BEP 10 extended message (id 20): skipped as `other`.
    bytes ext{0, 0, 0, 4, 20, 0, 'd', 'e'};
    apply_mask(ext, kind);
    out.insert(out.end(), ext.begin(), ext.end());
    return out;
}

struct parsed {
    std::vector<wire_event> events;
    bytes payload; // piece_data fragments, un-inverted and concatenated
    status st;
};

parsed parse_in_parts(flow_kind kind, bool with_handshake, byte_view in,
                      const std::vector<std::size_t>& cuts, bool deliver = true) {
    parsed p;
    wire_parser parser(kind, with_handshake, parser_limits{default_max_bitfield_bytes, deliver});
    std::size_t at = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(in.size());
    for (std::size_t end : ends) {
        std::vector<wire_event> evs;
        p.st = parser.feed(in.subspan(at, end - at), evs);
        for (auto& e : evs) {
            if (e.type == message_type::piece_data) {
                const std::size_t from = p.payload.size();
                p.payload.insert(p.payload.end(), e.data.begin(), e.data.end());
                apply_mask(std::span<std::uint8_t>(p.payload.data() + from, e.data.size()), kind);
                continue; // fragment boundaries depend on the cuts; compare their bytes only
            }
            e.data = {};
            p.events.push_back(std::move(e));
        }
        if (!p.st)
            break;
        at = end;
    }
    return p;
}

void expect_same(const std::vector<wire_event>& a, const std::vector<wire_event>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].type, b[i].type) << i;
        EXPECT_EQ(a[i].index, b[i].index) << i;
        EXPECT_EQ(a[i].begin, b[i].begin) << i;
        EXPECT_EQ(a[i].length, b[i].length) << i;
        EXPECT_EQ(a[i].bitfield, b[i].bitfield) << i;
    }
}

TEST(BtWire, HandshakeLayoutAndRoundTrip) {
    const auto h = sample_handshake();
    const auto bt = encode_handshake(h, flow_kind::bt);
    EXPECT_EQ(bt[0], 19);
    EXPECT_EQ(std::string(bt.begin() + 1, bt.begin() + 20), "BitTorrent protocol");
    EXPECT_EQ(bt[25], 0x10); // extension protocol
    EXPECT_EQ(bt[27], 0x05); // fast extension + DHT
    EXPECT_EQ(std::string(bt.begin() + 48, bt.begin() + 56), "-GN0001-");
    for (auto it = bt.begin() + 56; it != bt.end(); ++it)
        EXPECT_TRUE(std::isalnum(*it));

    const auto ctl = encode_handshake(h, flow_kind::control);
    for (std::size_t i = 0; i < handshake_size; ++i)
        EXPECT_EQ(ctl[i], bt[i] ^ 0xff) << i;

    for (const auto& [bytes_, kind] :
         {std::pair{bt, flow_kind::bt}, std::pair{ctl, flow_kind::control}}) {
        auto c = classify_handshake(bytes_);
        ASSERT_TRUE(c.ok());
        EXPECT_EQ(c->kind, kind);
        EXPECT_EQ(c->hs.info_hash, h.info_hash);
        EXPECT_EQ(c->hs.peer_id, h.peer_id);
        EXPECT_EQ(c->hs.reserved, h.reserved);
    }
}

TEST(BtWire, ClassifyRejectsGarbageWithReason) {
    handshake_bytes http{};
    const std::string get = "GET / HTTP/1.1\r\nHost: example\r\n";
    std::copy(get.begin(), get.end(), http.begin());
    auto c = classify_handshake(http);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.err().code, errc::protocol_error);
    EXPECT_NE(c.err().reason.find("0x47"), std::string::npos) << c.err().reason;

    // Right first byte, wrong protocol name.
    auto h = encode_handshake(sample_handshake(), flow_kind::bt);
    h[5] = 'X';
    auto d = classify_handshake(h);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.err().code, errc::protocol_error);
}

TEST(BtWire, InfoHashIsSha1OfToken) {
    EXPECT_EQ(to_hex(info_hash_of_token(as_bytes("abc"))),
              "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(BtWire, ControlEncodingIsBitInverseOfBt) {
    const bytes bt = sample_stream(flow_kind::bt, true);
    const bytes ctl = sample_stream(flow_kind::control, true);
    ASSERT_EQ(bt.size(), ctl.size());
    for (std::size_t i = 0; i < bt.size(); ++i)
        ASSERT_EQ(ctl[i], bt[i] ^ 0xff) << i;

    std::array<std::uint8_t, piece_header_size> hb{}, hc{};
    write_piece_header(hb, 1, 2, 3, flow_kind::bt);
    write_piece_header(hc, 1, 2, 3, flow_kind::control);
    for (std::size_t i = 0; i < hb.size(); ++i)
        EXPECT_EQ(hc[i], hb[i] ^ 0xff);
    std::array<std::uint8_t, request_message_size> rb{}, rc{};
    write_request(rb, 4, 5, 6, flow_kind::bt);
    write_request(rc, 4, 5, 6, flow_kind::control);
    for (std::size_t i = 0; i < rb.size(); ++i)
        EXPECT_EQ(rc[i], rb[i] ^ 0xff);
    bytes via_append;
    append_request(via_append, 4, 5, 6, flow_kind::bt);
    EXPECT_TRUE(std::equal(rb.begin(), rb.end(), via_append.begin(), via_append.end()));
}

TEST(BtWire, ParsesEveryMessageType) {
    for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
        const bytes s = sample_stream(kind, true);
        wire_parser parser(kind, true);
        std::vector<wire_event> evs;
        ASSERT_TRUE(parser.feed(s, evs).ok());
        ASSERT_TRUE(parser.handshake_done());
        EXPECT_EQ(parser.peer_handshake().info_hash, sample_handshake().info_hash);
        EXPECT_TRUE(parser.at_message_boundary());
        const std::vector<message_type> want{
            message_type::keep_alive, message_type::choke,          message_type::unchoke,
            message_type::interested, message_type::not_interested, message_type::have,
            message_type::bitfield,   message_type::request,        message_type::piece,
            message_type::piece,      message_type::cancel,         message_type::port,
            message_type::other};
        ASSERT_EQ(evs.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i)
            EXPECT_EQ(evs[i].type, want[i]) << i;
        EXPECT_EQ(evs[5].index, 0x01020304u);
        EXPECT_EQ(evs[6].bitfield, (bytes{0xff, 0xfe, 0x80}));
        EXPECT_EQ(evs[7].index, 7u);
        EXPECT_EQ(evs[7].begin, 16384u);
        EXPECT_EQ(evs[7].length, 16384u);
        EXPECT_EQ(evs[8].length, block_size);
        EXPECT_EQ(evs[9].index, 9u);
        EXPECT_EQ(evs[9].length, 3u);
        EXPECT_EQ(evs[10].begin, 32768u);
        EXPECT_EQ(evs[11].index, 6881u);
        EXPECT_EQ(evs[12].raw_id, 20);
        EXPECT_EQ(evs[12].length, 3u);
        EXPECT_EQ(parser.payload_bytes(), block_size + 3);
    }
}

TEST(BtWire, SameEventsWhereverTheInputIsSplit) {
    for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
        const bytes s = sample_stream(kind, true);
        const parsed whole = parse_in_parts(kind, true, s, {});
        ASSERT_TRUE(whole.st.ok());
        bytes want_payload = sample_block(block_size);
        const bytes small = sample_block(3);
        want_payload.insert(want_payload.end(), small.begin(), small.end());
        EXPECT_EQ(whole.payload, want_payload);

        for (std::size_t cut = 0; cut <= s.size(); ++cut) {
            const parsed p = parse_in_parts(kind, true, s, {cut});
            ASSERT_TRUE(p.st.ok()) << cut;
            expect_same(whole.events, p.events);
            ASSERT_EQ(p.payload, want_payload) << cut;
        }
        // Two cuts around every header byte, and one byte at a time.
        for (std::size_t cut = 1; cut + 1 < s.size(); cut += 97) {
            const parsed p = parse_in_parts(kind, true, s, {cut, cut + 1});
            ASSERT_TRUE(p.st.ok()) << cut;
            expect_same(whole.events, p.events);
        }
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < s.size(); ++i)
            every.push_back(i);
        const parsed bytewise = parse_in_parts(kind, true, s, every);
        ASSERT_TRUE(bytewise.st.ok());
        expect_same(whole.events, bytewise.events);
        EXPECT_EQ(bytewise.payload, want_payload);
    }
}

TEST(BtWire, FastPathSkipsPayloadWithoutEvents) {
    const bytes s = sample_stream(flow_kind::control, false);
    const parsed p = parse_in_parts(flow_kind::control, false, s, {}, false);
    ASSERT_TRUE(p.st.ok());
    EXPECT_TRUE(p.payload.empty());
    EXPECT_EQ(p.events.size(), 13u);
}

TEST(BtWire, WrongKindFailsTheHandshake) {
    const bytes s = sample_stream(flow_kind::control, true);
    wire_parser parser(flow_kind::bt, true);
    std::vector<wire_event> evs;
    EXPECT_FALSE(parser.feed(s, evs).ok());
    EXPECT_TRUE(parser.failed());
}

TEST(BtWire, LengthBoundsAreEnforcedBeforeBuffering) {
    for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
        // A huge length prefix.
        bytes huge{0xff, 0xff, 0xff, 0xff, 7};
        apply_mask(huge, kind);
        wire_parser p1(kind, false);
        std::vector<wire_event> evs;
        auto st = p1.feed(huge, evs);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.err().code, errc::limit_exceeded);
        // The parser stays failed, even on valid input.
        bytes ok;
        append_keep_alive(ok, kind);
        EXPECT_FALSE(p1.feed(ok, evs).ok());
        EXPECT_TRUE(evs.empty());

        // A piece one byte over a full block.
        bytes piece;
        const std::uint32_t n = 9 + block_size + 1;
        piece = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                 static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n), 7};
        apply_mask(piece, kind);
        wire_parser p2(kind, false);
        st = p2.feed(piece, evs);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.err().code, errc::limit_exceeded);

        // A bitfield over the parser's limit; one at the limit passes.
        wire_parser p3(kind, false, parser_limits{16, false});
        bytes bits;
        append_bitfield(bits, bytes(17, 0xff), kind);
        st = p3.feed(bits, evs);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.err().code, errc::limit_exceeded);
        wire_parser p4(kind, false, parser_limits{16, false});
        bits.clear();
        append_bitfield(bits, bytes(16, 0xff), kind);
        EXPECT_TRUE(p4.feed(bits, evs).ok());

        // Fixed-size messages with the wrong length.
        for (std::uint8_t id : {0, 1, 2, 3, 4, 6, 8, 9}) {
            bytes bad{0, 0, 0, 2, id, 0};
            apply_mask(bad, kind);
            wire_parser p(kind, false);
            st = p.feed(bad, evs);
            ASSERT_FALSE(st.ok()) << int(id);
            EXPECT_EQ(st.err().code, errc::protocol_error) << int(id);
        }
        // A piece without a block.
        bytes empty_piece{0, 0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0};
        apply_mask(empty_piece, kind);
        wire_parser p5(kind, false);
        EXPECT_FALSE(p5.feed(empty_piece, evs).ok());
    }
}

} // namespace
} // namespace glasnode::proto::diff
