#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "overlay/identity/identity.hpp"
#include "overlay/wire/canonical.hpp"

namespace glasnode::wire {
namespace {

std::string hex_of(canonical_writer& w) {
    return to_hex(w.data());
}

bytes unhex(std::string_view h) {
    bytes b;
    EXPECT_TRUE(from_hex(h, b)) << h;
    return b;
}

// Golden bytes written out by hand from the msgpack specification.
struct uint_case {
    std::uint64_t value;
    const char* hex;
};
struct sint_case {
    std::int64_t value;
    const char* hex;
};

TEST(canonical, unsigned_integers_use_the_smallest_form) {
    const uint_case cases[] = {
        {0, "00"},
        {127, "7f"},
        {128, "cc80"},
        {255, "ccff"},
        {256, "cd0100"},
        {65535, "cdffff"},
        {65536, "ce00010000"},
        {4294967295u, "ceffffffff"},
        {4294967296u, "cf0000000100000000"},
        {std::numeric_limits<std::uint64_t>::max(), "cfffffffffffffffff"},
    };
    for (const auto& c : cases) {
        canonical_writer w;
        w.uint(c.value);
        EXPECT_EQ(hex_of(w), c.hex) << c.value;
        EXPECT_TRUE(check_canonical(w.data()).ok()) << c.hex;
    }
}

TEST(canonical, signed_integers_use_the_smallest_form) {
    const sint_case cases[] = {
        {5, "05"},
        {200, "ccc8"},
        {-1, "ff"},
        {-32, "e0"},
        {-33, "d0df"},
        {-128, "d080"},
        {-129, "d1ff7f"},
        {-32768, "d18000"},
        {-32769, "d2ffff7fff"},
        {std::numeric_limits<std::int32_t>::min(), "d280000000"},
        {std::int64_t{std::numeric_limits<std::int32_t>::min()} - 1, "d3ffffffff7fffffff"},
        {std::numeric_limits<std::int64_t>::min(), "d38000000000000000"},
    };
    for (const auto& c : cases) {
        canonical_writer w;
        w.sint(c.value);
        EXPECT_EQ(hex_of(w), c.hex) << c.value;
        EXPECT_TRUE(check_canonical(w.data()).ok()) << c.hex;
    }
}

TEST(canonical, str_bin_array_headers) {
    canonical_writer w;
    w.str("");
    EXPECT_EQ(hex_of(w), "a0");
    canonical_writer abc;
    abc.str("abc");
    EXPECT_EQ(hex_of(abc), "a3616263");

    const std::pair<std::size_t, const char*> str_headers[] = {
        {31, "bf"}, {32, "d920"}, {255, "d9ff"}, {256, "da0100"}, {65536, "db00010000"}};
    for (auto [size, header] : str_headers) {
        canonical_writer s;
        s.str(std::string(size, 'x'));
        EXPECT_EQ(to_hex(byte_view(s.data()).first(std::string_view(header).size() / 2)), header);
        EXPECT_EQ(s.data().size(), std::string_view(header).size() / 2 + size);
        EXPECT_TRUE(check_canonical(s.data()).ok()) << size;
    }
    const std::pair<std::size_t, const char*> bin_headers[] = {
        {0, "c400"}, {2, "c402"}, {255, "c4ff"}, {256, "c50100"}, {65536, "c600010000"}};
    for (auto [size, header] : bin_headers) {
        canonical_writer b;
        b.bin(bytes(size, 0x01));
        EXPECT_EQ(to_hex(byte_view(b.data()).first(std::string_view(header).size() / 2)), header);
        EXPECT_TRUE(check_canonical(b.data()).ok()) << size;
    }
    const std::pair<std::uint32_t, const char*> array_headers[] = {
        {0, "90"}, {15, "9f"}, {16, "dc0010"}, {65535, "dcffff"}, {65536, "dd00010000"}};
    for (auto [count, header] : array_headers) {
        canonical_writer a;
        a.array(count);
        EXPECT_EQ(hex_of(a), header);
    }
    canonical_writer misc;
    misc.boolean(true).boolean(false).nil();
    EXPECT_EQ(hex_of(misc), "c3c2c0");
}

TEST(canonical, signed_object_bytes_are_stable) {
    // [1, "ab", bin(ff), -1, true, nil, [300]]
    canonical_writer w;
    w.array(7).uint(1).str("ab").bin(bytes{0xff}).sint(-1).boolean(true).nil().array(1).uint(300);
    EXPECT_EQ(hex_of(w), "9701a26162c401ffffc3c091cd012c");
    EXPECT_TRUE(check_canonical(w.data()).ok());

    // msgpack-c's packer agrees with the canonical writer on this object.
    bytes packed;
    byte_sink sink(packed);
    packer pk(sink);
    pk.pack_array(7);
    pk.pack_uint64(1);
    pk.pack(std::string("ab"));
    pk.pack_bin(1);
    pk.pack_bin_body("\xff", 1);
    pk.pack_int64(-1);
    pk.pack_true();
    pk.pack_nil();
    pk.pack_array(1);
    pk.pack_uint64(300);
    EXPECT_EQ(packed, w.data());

    // The signature covers exactly these bytes and is checked on the received bytes.
    seeded_random rng(7);
    const auto id = overlay::identity::generate(rng);
    const overlay::signature sig = id.sign(w.data());
    EXPECT_TRUE(overlay::verify(id.key(), w.data(), sig));

    auto h = decode_canonical(w.data());
    ASSERT_TRUE(h.ok()) << h.err().describe();
    field_reader r(h->get(), "sample", 7);
    EXPECT_EQ(r.u64("version"), 1u);
    EXPECT_EQ(r.str("name", 8), "ab");
    EXPECT_EQ(r.bin("blob", 8), bytes{0xff});
    EXPECT_EQ(r.i64("delta"), -1);
    EXPECT_TRUE(r.boolean("flag"));
    EXPECT_TRUE(r.nil("none"));
    EXPECT_EQ(r.array("list", 4).size(), 1u);
    EXPECT_TRUE(r.finish().ok());
}

TEST(canonical, non_canonical_encodings_are_refused) {
    const char* bad[] = {
        "cc05",               // 5 as uint8
        "cd00ff",             // 255 as uint16
        "ce0000ffff",         // 65535 as uint32
        "cf00000000ffffffff", // 2^32-1 as uint64
        "d0ff",               // -1 as int8
        "d001",               // positive as int8
        "d1ff80",             // -128 as int16
        "d2ffff8000",         // -32768 as int32
        "d3ffffffff80000000", // int32 min as int64
        "d903616263",         // short str as str8
        "da0003616263",       // short str as str16
        "c5000101",           // short bin as bin16
        "dc000101",           // short array as array16
        "dd0000000101",       // short array as array32
        "ca3f800000",         // float32
        "cb3ff0000000000000", // float64
        "80",                 // fixmap
        "de0000",             // map16
        "d40100",             // fixext1
        "c1",                 // never used
    };
    for (const char* h : bad) {
        const status s = check_canonical(unhex(h));
        ASSERT_FALSE(s.ok()) << h;
        EXPECT_EQ(s.err().code, errc::protocol_error) << h;
        EXPECT_FALSE(decode_canonical(unhex(h)).ok()) << h;
    }
    EXPECT_EQ(check_canonical(unhex("91cc05")).err().reason,
              "canonical msgpack at offset 1: value not in its smallest encoding");
    EXPECT_EQ(check_canonical(unhex("0101")).err().reason,
              "canonical msgpack at offset 0: 1 trailing bytes");
    EXPECT_EQ(check_canonical(unhex("92a3")).err().reason,
              "canonical msgpack at offset 1: truncated");
    EXPECT_FALSE(check_canonical({}).ok());
}

TEST(canonical, limits_apply) {
    canonical_writer deep;
    for (int i = 0; i < 9; ++i)
        deep.array(1);
    deep.uint(1);
    const status s = check_canonical(deep.data());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::limit_exceeded);
    EXPECT_TRUE(s.err().reason.find("nesting deeper than 8") != std::string::npos);

    canonical_writer eight;
    for (int i = 0; i < 8; ++i)
        eight.array(1);
    eight.uint(1);
    EXPECT_TRUE(check_canonical(eight.data()).ok());
    EXPECT_TRUE(decode_canonical(eight.data()).ok());

    decode_limits small;
    small.max_str = 4;
    small.max_bin = 2;
    small.max_array = 2;
    canonical_writer str;
    str.str("hello");
    EXPECT_EQ(check_canonical(str.data(), small).err().code, errc::limit_exceeded);
    canonical_writer bin;
    bin.bin(bytes(3));
    EXPECT_EQ(check_canonical(bin.data(), small).err().code, errc::limit_exceeded);
    canonical_writer arr;
    arr.array(3).uint(1).uint(2).uint(3);
    EXPECT_EQ(check_canonical(arr.data(), small).err().code, errc::limit_exceeded);
}

} // namespace
} // namespace glasnode::wire
