#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/message.hpp"

namespace glasnode::wire {
namespace {

bytes pack(const std::function<void(packer&)>& fn) {
    bytes out;
    byte_sink sink(out);
    packer pk(sink);
    fn(pk);
    return out;
}

// [version, type, body] with a body written by `body`.
bytes envelope_with(std::uint64_t version, std::uint64_t type,
                    const std::function<void(packer&)>& body) {
    return pack([&](packer& pk) {
        pk.pack_array(3);
        pk.pack_uint64(version);
        pk.pack_uint64(type);
        body(pk);
    });
}

error decode_error(const bytes& payload, const decode_limits& limits = {}) {
    auto r = decode_envelope(payload, core_message_registry(), limits);
    EXPECT_FALSE(r.ok());
    if (r.ok())
        return make_error(errc::invalid_argument, "unexpectedly decoded");
    return r.err();
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

TEST(message, core_messages_round_trip) {
    const message_registry reg = core_message_registry();
    EXPECT_EQ(reg.size(), 5u);

    hello h;
    h.channel_version = 1;
    for (std::size_t i = 0; i < 32; ++i) {
        h.static_key[i] = static_cast<std::uint8_t>(i);
        h.kx_key[i] = static_cast<std::uint8_t>(100 + i);
        h.nonce[i] = static_cast<std::uint8_t>(200 + i);
    }
    auto env = decode_envelope(encode_message(h), reg);
    ASSERT_TRUE(env.ok()) << env.err().describe();
    EXPECT_EQ(env->type(), hello::type_id);
    EXPECT_EQ(env->version(), protocol_version);
    auto h2 = decode_body<hello>(*env);
    ASSERT_TRUE(h2.ok()) << h2.err().describe();
    EXPECT_EQ(h2->static_key, h.static_key);
    EXPECT_EQ(h2->kx_key, h.kx_key);
    EXPECT_EQ(h2->nonce, h.nonce);

    auth a;
    a.signature.fill(0x5a);
    auto a2 = decode_message<auth>(encode_message(a));
    ASSERT_TRUE(a2.ok());
    EXPECT_EQ(a2->signature, a.signature);

    auto p = decode_message<ping>(encode_message(ping{.nonce = 0xfedcba9876543210}));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->nonce, 0xfedcba9876543210u);
    auto q = decode_message<pong>(encode_message(pong{.nonce = 3}));
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->nonce, 3u);

    error_message e;
    e.code = static_cast<std::uint16_t>(wire_error::busy);
    e.reason = "queue full";
    auto e2 = decode_message<error_message>(encode_message(e));
    ASSERT_TRUE(e2.ok());
    EXPECT_EQ(e2->code, e.code);
    EXPECT_EQ(e2->reason, "queue full");
}

TEST(message, wire_form_is_the_documented_array) {
    // [1, 3, [5]] -> 93 01 03 91 05
    EXPECT_EQ(to_hex(encode_message(ping{.nonce = 5})), "9301039105");
}

TEST(message, wrong_field_type_names_message_and_field) {
    const bytes payload = envelope_with(1, ping::type_id, [](packer& pk) {
        pk.pack_array(1);
        pk.pack(std::string("five"));
    });
    auto env = decode_envelope(payload, core_message_registry());
    ASSERT_TRUE(env.ok());
    auto p = decode_body<ping>(*env);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.err().code, errc::protocol_error);
    EXPECT_EQ(p.err().reason, "ping field 0 (nonce): expected uint");

    const bytes negative = envelope_with(1, ping::type_id, [](packer& pk) {
        pk.pack_array(1);
        pk.pack_int64(-1);
    });
    auto n = decode_message<ping>(negative);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.err().reason, "ping field 0 (nonce): expected uint");
}

TEST(message, wrong_field_count) {
    const bytes payload = envelope_with(1, pong::type_id, [](packer& pk) {
        pk.pack_array(2);
        pk.pack_uint64(1);
        pk.pack_uint64(2);
    });
    auto p = decode_message<pong>(payload);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.err().reason, "pong: expected 1 field, got 2");
}

TEST(message, fixed_size_bin_is_checked) {
    const bytes payload = envelope_with(1, hello::type_id, [](packer& pk) {
        pk.pack_array(4);
        pk.pack_uint64(1);
        const bytes k(31, 1);
        pk.pack_bin(31);
        pk.pack_bin_body(reinterpret_cast<const char*>(k.data()), 31);
        pk.pack_bin(32);
        pk.pack_bin_body(reinterpret_cast<const char*>(bytes(32).data()), 32);
        pk.pack_bin(32);
        pk.pack_bin_body(reinterpret_cast<const char*>(bytes(32).data()), 32);
    });
    auto h = decode_message<hello>(payload);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.err().reason, "hello field 1 (static key): expected 32 bytes, got 31");
}

TEST(message, excessive_nesting_is_refused) {
    const bytes payload = envelope_with(1, ping::type_id, [](packer& pk) {
        for (int i = 0; i < 20; ++i)
            pk.pack_array(1);
        pk.pack_uint64(1);
    });
    const error e = decode_error(payload);
    EXPECT_EQ(e.code, errc::limit_exceeded);
    EXPECT_TRUE(contains(e.reason, "nesting deeper than 8")) << e.reason;
}

TEST(message, nesting_at_the_limit_is_accepted) {
    // The envelope, the body and six more levels: eight arrays.
    const bytes payload = envelope_with(1, ping::type_id, [](packer& pk) {
        for (int i = 0; i < 7; ++i)
            pk.pack_array(1);
        pk.pack_uint64(1);
    });
    EXPECT_TRUE(decode_envelope(payload, core_message_registry()).ok());
    const bytes deeper = envelope_with(1, ping::type_id, [](packer& pk) {
        for (int i = 0; i < 8; ++i)
            pk.pack_array(1);
        pk.pack_uint64(1);
    });
    EXPECT_EQ(decode_error(deeper).code, errc::limit_exceeded);
}

TEST(message, oversized_array_is_refused) {
    const bytes payload = envelope_with(1, ping::type_id, [](packer& pk) {
        pk.pack_array(1025);
        for (int i = 0; i < 1025; ++i)
            pk.pack_uint64(0);
    });
    const error e = decode_error(payload);
    EXPECT_EQ(e.code, errc::limit_exceeded);
    EXPECT_TRUE(contains(e.reason, "more than 1024 elements")) << e.reason;
}

TEST(message, array_header_larger_than_input_does_not_allocate_the_claim) {
    // array32 claiming 2^32-1 elements in a 10-byte payload.
    const bytes payload{0x93, 0x01, 0x03, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    EXPECT_EQ(decode_error(payload).code, errc::limit_exceeded);
    // Within the limit, a claim larger than the input ends as a truncation.
    const bytes claim{0x93, 0x01, 0x03, 0xdc, 0x04, 0x00, 0x01, 0x02};
    EXPECT_EQ(decode_error(claim).reason, "message: truncated msgpack");
}

TEST(message, oversized_str_and_bin_are_refused) {
    const bytes long_str = envelope_with(1, error_message::type_id, [](packer& pk) {
        pk.pack_array(2);
        pk.pack_uint64(1);
        pk.pack(std::string(70000, 'x'));
    });
    const error e = decode_error(long_str);
    EXPECT_EQ(e.code, errc::limit_exceeded);
    EXPECT_TRUE(contains(e.reason, "str is longer than 65536")) << e.reason;

    // Within the parse limit but above the field's own bound.
    const bytes medium = envelope_with(1, error_message::type_id, [](packer& pk) {
        pk.pack_array(2);
        pk.pack_uint64(1);
        pk.pack(std::string(300, 'x'));
    });
    auto m = decode_message<error_message>(medium);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.err().code, errc::limit_exceeded);
    EXPECT_EQ(m.err().reason, "error field 1 (reason): str of 300 bytes exceeds 256");

    decode_limits small;
    small.max_bin = 16;
    auth a;
    const error b = decode_error(encode_message(a), small);
    EXPECT_EQ(b.code, errc::limit_exceeded);
    EXPECT_TRUE(contains(b.reason, "bin is longer than 16")) << b.reason;
}

TEST(message, trailing_garbage_is_refused) {
    bytes payload = encode_message(ping{.nonce = 1});
    payload.push_back(0xc0);
    payload.push_back(0xc0);
    const error e = decode_error(payload);
    EXPECT_EQ(e.code, errc::protocol_error);
    EXPECT_EQ(e.reason, "message: 2 trailing bytes after the value");
}

TEST(message, truncated_and_malformed_and_empty) {
    const bytes full = encode_message(ping{.nonce = 0xffffffffffff});
    for (std::size_t n = 1; n < full.size(); ++n) {
        const error e = decode_error(bytes(full.begin(), full.begin() + static_cast<long>(n)));
        EXPECT_EQ(e.code, errc::protocol_error);
        EXPECT_EQ(e.reason, "message: truncated msgpack") << n;
    }
    EXPECT_EQ(decode_error(bytes{0xc1}).reason, "message: malformed msgpack");
    EXPECT_EQ(decode_error(bytes{}).reason, "message: empty payload");
}

TEST(message, unknown_version_is_unsupported_version) {
    const bytes payload = envelope_with(2, ping::type_id, [](packer& pk) {
        pk.pack_array(1);
        pk.pack_uint64(1);
    });
    const error e = decode_error(payload);
    EXPECT_EQ(e.code, errc::unsupported_version);
    EXPECT_EQ(e.reason, "message: unsupported protocol version 2 (this node speaks 1)");
}

TEST(message, unknown_type_names_its_range) {
    const bytes payload = envelope_with(1, 0x0201, [](packer& pk) { pk.pack_array(0); });
    const error e = decode_error(payload);
    EXPECT_EQ(e.code, errc::protocol_error);
    EXPECT_EQ(e.reason, "message: unknown message type 513 (firewall range)");

    auto wrong = decode_message<ping>(encode_message(pong{.nonce = 1}));
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.err().reason, "message: message type 4 (core range) where ping was expected");

    const bytes too_big = envelope_with(1, 70000, [](packer& pk) { pk.pack_array(0); });
    EXPECT_EQ(decode_error(too_big).reason, "message: type 70000 out of range");
}

TEST(message, wrong_envelope_shapes) {
    EXPECT_EQ(decode_error(pack([](packer& pk) { pk.pack_uint64(1); })).reason,
              "message: envelope is not a 3-element array");
    EXPECT_EQ(decode_error(pack([](packer& pk) {
                  pk.pack_array(2);
                  pk.pack_uint64(1);
                  pk.pack_uint64(3);
              })).reason,
              "message: envelope is not a 3-element array");
    EXPECT_EQ(decode_error(envelope_with(1, 3, [](packer& pk) { pk.pack_uint64(5); })).reason,
              "message type 3 (ping): body is not an array");
    EXPECT_EQ(decode_error(pack([](packer& pk) {
                  pk.pack_array(3);
                  pk.pack(std::string("1"));
                  pk.pack_uint64(3);
                  pk.pack_array(0);
              })).reason,
              "message: envelope version: expected uint");
    // A map body: parsed (within limits) but not an array.
    EXPECT_EQ(decode_error(envelope_with(1, 3, [](packer& pk) { pk.pack_map(0); })).reason,
              "message type 3 (ping): body is not an array");
    // ext values are refused at parse time.
    const bytes ext{0x93, 0x01, 0x03, 0x91, 0xd4, 0x01, 0x00};
    EXPECT_EQ(decode_error(ext).code, errc::limit_exceeded);
}

TEST(message, error_reason_is_bounded_and_printable) {
    error_message e;
    e.code = 99;
    e.reason = std::string(300, 'a') + "\n";
    auto d = decode_message<error_message>(encode_message(e));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->reason.size(), error_message::max_reason);
    EXPECT_EQ(d->code, 99) << "unknown codes are kept";

    e.reason = "line\nbreak";
    d = decode_message<error_message>(encode_message(e));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->reason, "line?break");

    const bytes raw = envelope_with(1, error_message::type_id, [](packer& pk) {
        pk.pack_array(2);
        pk.pack_uint64(1);
        pk.pack(std::string("a\x1b[2J"));
    });
    auto bad = decode_message<error_message>(raw);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.err().reason, "error field 1 (reason): non-printable byte in reason text");

    const bytes big_code = envelope_with(1, error_message::type_id, [](packer& pk) {
        pk.pack_array(2);
        pk.pack_uint64(70000);
        pk.pack(std::string("x"));
    });
    auto big = decode_message<error_message>(big_code);
    ASSERT_FALSE(big.ok());
    EXPECT_EQ(big.err().reason, "error field 0 (code): value above 65535");
}

TEST(message, registry_rules) {
    message_registry reg;
    EXPECT_TRUE(reg.add<ping>().ok());
    const status dup = reg.add(ping::type_id, "other");
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.err().code, errc::invalid_argument);
    EXPECT_FALSE(reg.add(0, "zero").ok());
    EXPECT_TRUE(reg.contains(ping::type_id));
    EXPECT_FALSE(reg.contains(pong::type_id));
    EXPECT_EQ(reg.name(ping::type_id), "ping");
    EXPECT_EQ(reg.name(pong::type_id), "");
    EXPECT_FALSE(add_core_messages(reg).ok()) << "ping is already there";

    EXPECT_EQ(message_type_layer(0), "reserved");
    EXPECT_EQ(message_type_layer(0x00ff), "core");
    EXPECT_EQ(message_type_layer(0x0100), "negotiation");
    EXPECT_EQ(message_type_layer(0x0300), "collect");
    EXPECT_EQ(message_type_layer(0x04ff), "gossip");
    EXPECT_EQ(message_type_layer(0x0500), "unassigned");
    EXPECT_EQ(message_type_layer(0xffff), "experimental");
    // Ranges are contiguous and ordered.
    for (std::size_t i = 1; i < message_type_ranges.size(); ++i) {
        EXPECT_EQ(message_type_ranges[i].first, message_type_ranges[i - 1].last + 1);
    }
}

TEST(message, field_reader_optional_and_nested_fields) {
    // [7, -3, true, nil, [[1, "a"], [2, "b"]]]
    const bytes body = pack([](packer& pk) {
        pk.pack_array(5);
        pk.pack_uint64(7);
        pk.pack_int64(-3);
        pk.pack_true();
        pk.pack_nil();
        pk.pack_array(2);
        pk.pack_array(2);
        pk.pack_uint64(1);
        pk.pack(std::string("a"));
        pk.pack_array(2);
        pk.pack_uint64(2);
        pk.pack(std::string("b"));
    });
    msgpack::object_handle h =
        msgpack::unpack(reinterpret_cast<const char*>(body.data()), body.size());
    field_reader r(h.get(), "sample", 3, 6);
    EXPECT_EQ(r.uint<std::uint8_t>("small"), 7);
    EXPECT_EQ(r.i64("signed"), -3);
    EXPECT_TRUE(r.boolean("flag"));
    EXPECT_TRUE(r.nil("optional"));
    auto items = r.array("items", 4);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(r.last_field_label(), "sample field 4 (items)");
    std::vector<std::string> names;
    for (std::size_t i = 0; i < items.size(); ++i) {
        field_reader item(items[i], r.last_field_label() + " item " + std::to_string(i), 2);
        EXPECT_EQ(item.u64("id"), i + 1);
        names.push_back(item.str("name", 8));
        EXPECT_TRUE(item.finish().ok());
    }
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_TRUE(r.finish().ok());

    field_reader short_reader(h.get(), "sample", 5);
    short_reader.u64("small");
    const status unread = short_reader.finish();
    ASSERT_FALSE(unread.ok());
    EXPECT_EQ(unread.err().reason, "sample: 4 unread fields after field 1");

    field_reader nested(h.get(), "sample", 5);
    nested.u64("small");
    nested.i64("signed");
    nested.boolean("flag");
    nested.nil("optional");
    auto too_many = nested.array("items", 1);
    EXPECT_TRUE(too_many.empty());
    const status s = nested.finish();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::limit_exceeded);
    EXPECT_EQ(s.err().reason, "sample field 4 (items): array of 2 elements exceeds 1");

    // After the first error every read is inert and the first reason is kept.
    field_reader sticky(h.get(), "sample", 5);
    sticky.boolean("not a bool");
    sticky.u64("whatever");
    EXPECT_EQ(sticky.finish().err().reason, "sample field 0 (not a bool): expected bool");

    field_reader past(h.get(), "sample", 5, 6);
    past.u64("small");
    past.i64("signed");
    past.boolean("flag");
    EXPECT_TRUE(past.nil("optional"));
    EXPECT_FALSE(past.nil("not nil"));
    past.array("items", 2);
    EXPECT_EQ(past.u64("extra"), 0u);
    EXPECT_EQ(past.finish().err().reason, "sample field 5 (extra): missing");
}

} // namespace
} // namespace glasnode::wire
