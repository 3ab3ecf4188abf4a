#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "storage/key_codec.hpp"
#include "storage/table.hpp"

namespace glasnode::storage {
namespace {

using bytes_key = std::vector<std::uint8_t>;

// Sorting values by their encodings must give the same order as sorting the values.
template <class K>
void expect_order_preserved(std::vector<K> values) {
    std::vector<std::pair<std::string, K>> encoded;
    for (const auto& v : values) {
        encoded.emplace_back(encode_key(v), v);
    }
    std::sort(values.begin(), values.end());
    std::sort(encoded.begin(), encoded.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    ASSERT_EQ(values.size(), encoded.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        EXPECT_EQ(encoded[i].second, values[i]) << "position " << i;
        auto back = decode_key<K>(encoded[i].first);
        ASSERT_TRUE(back.has_value());
        EXPECT_EQ(*back, encoded[i].second);
    }
}

TEST(key_codec, unsigned_integers_are_big_endian) {
    EXPECT_EQ(encode_key(std::uint64_t{0x0102030405060708}),
              std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    EXPECT_EQ(encode_key(std::uint16_t{0x0100}), std::string("\x01\x00", 2));
    EXPECT_EQ(encode_key(std::uint32_t{1}).size(), 4u);
}

TEST(key_codec, unsigned_order_differs_from_little_endian_order) {
    // In little-endian bytes 256 (00 01 ..) would sort before 1 (01 00 ..).
    std::vector<std::uint64_t> values{
        256, 1, 255, 65536, 0, 65535, 1ull << 63, std::numeric_limits<std::uint64_t>::max(),
        257, 2};
    expect_order_preserved(values);
    EXPECT_LT(encode_key(std::uint64_t{1}), encode_key(std::uint64_t{256}));
}

TEST(key_codec, signed_integers_sort_negatives_first) {
    expect_order_preserved(
        std::vector<std::int64_t>{0, -1, 1, std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::int64_t>::max(), -256, 256, -2, 255});
    expect_order_preserved(std::vector<std::int32_t>{7, -7, 0, -1, 1 << 20, -(1 << 20)});
}

TEST(key_codec, strings_as_last_component_are_raw) {
    EXPECT_EQ(encode_key(std::string("ab\0c", 4)), std::string("ab\0c", 4));
    expect_order_preserved(
        std::vector<std::string>{"b", "a", "", "ab", std::string("a\0", 2), "\xff", "aa"});
}

TEST(key_codec, composite_keys_keep_component_order) {
    using key = std::tuple<std::string, std::uint64_t>;
    expect_order_preserved(std::vector<key>{{"a", 5},
                                            {"a", 256},
                                            {"a", 1},
                                            {"", 9},
                                            {std::string("a\0", 2), 0},
                                            {"ab", 0},
                                            {std::string("a\0\xff", 3), 3},
                                            {"b", 0},
                                            {"\xff\xff", 1}});
    using pair_key = std::pair<std::uint64_t, std::uint64_t>;
    expect_order_preserved(std::vector<pair_key>{{1, 2}, {1, 1}, {0, 300}, {256, 0}, {2, 0}});
}

TEST(key_codec, bytes_then_integer_round_trips_with_zero_and_ff_bytes) {
    using key = std::tuple<bytes_key, std::uint64_t>;
    key k{bytes_key{0x00, 0xff, 0x00, 0x00, 0x01, 0xff}, 42};
    auto encoded = encode_key(k);
    auto back = decode_key<key>(encoded);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, k);
    expect_order_preserved(std::vector<key>{
        key{bytes_key{}, 1}, key{bytes_key{0x00}, 0}, key{bytes_key{0x00, 0x00}, 0},
        key{bytes_key{0x00, 0x01}, 0}, key{bytes_key{0x01}, 7}, key{bytes_key{0xff}, 0},
        key{bytes_key{0xff, 0x00}, 1}});
}

TEST(key_codec, fixed_arrays_and_nested_tuples) {
    using id = std::array<std::uint8_t, 4>;
    using key = std::tuple<id, std::tuple<std::string, std::int32_t>, std::string>;
    key k{id{1, 0, 255, 3}, {std::string("x\0y", 3), -3}, "tail"};
    auto back = decode_key<key>(encode_key(k));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, k);
}

TEST(key_codec, malformed_encodings_are_rejected) {
    using key = std::tuple<std::string, std::uint64_t>;
    EXPECT_FALSE(decode_key<std::uint64_t>(std::string(7, 'x')).has_value());
    EXPECT_FALSE(decode_key<std::uint64_t>(std::string(9, 'x')).has_value());
    // Unterminated string component.
    EXPECT_FALSE(decode_key<key>(std::string("abc", 3)).has_value());
    // 0x00 followed by neither 0x01 nor 0xff.
    EXPECT_FALSE(decode_key<key>(std::string("a\0\x02", 3) + std::string(8, '\0')).has_value());
    // Trailing byte after the last component.
    EXPECT_FALSE(decode_key<key>(std::string("a\0\x01", 3) + std::string(9, '\0')).has_value());
}

TEST(key_codec, prefix_of_leading_components_selects_exactly_them) {
    using key = std::tuple<std::string, std::uint64_t>;
    auto range = key_range::prefix(key_prefix(std::string("ab")));
    EXPECT_TRUE(range.contains(encode_key(key{"ab", 0})));
    EXPECT_TRUE(range.contains(encode_key(key{"ab", ~0ull})));
    EXPECT_FALSE(range.contains(encode_key(key{"abc", 0})));
    EXPECT_FALSE(range.contains(encode_key(key{"a", 0})));
    EXPECT_FALSE(range.contains(encode_key(key{std::string("ab\0", 3), 0})));
}

TEST(key_codec, prefix_successor) {
    EXPECT_EQ(prefix_successor("ab"), std::optional<std::string>("ac"));
    EXPECT_EQ(prefix_successor("a\xff\xff"), std::optional<std::string>("b"));
    EXPECT_EQ(prefix_successor("\xff"), std::nullopt);
    EXPECT_EQ(prefix_successor(""), std::nullopt);
}

} // namespace
} // namespace glasnode::storage
