#include <array>
#include <cstdint>
#include <deque>
#include <set>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"

namespace glasnode {
namespace {

// Returns scripted 64-bit values (big-endian, as next_u64 reads them).
class scripted_random final : public random_source {
public:
    explicit scripted_random(std::deque<std::uint64_t> values) : m_values(std::move(values)) {}
    void fill(std::span<std::uint8_t> out) override {
        ASSERT_EQ(out.size(), 8u);
        ASSERT_FALSE(m_values.empty());
        const std::uint64_t v = m_values.front();
        m_values.pop_front();
        for (int i = 0; i < 8; ++i)
            out[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
        ++calls;
    }
    int calls = 0;

private:
    std::deque<std::uint64_t> m_values;
};

TEST(random, seeded_streams_are_reproducible) {
    seeded_random a(42), b(42), c(43);
    std::array<std::uint8_t, 48> x{}, y{}, z{};
    for (int round = 0; round < 3; ++round) {
        a.fill(x);
        b.fill(y);
        c.fill(z);
        EXPECT_EQ(x, y);
        EXPECT_NE(x, z);
    }
    EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(random, each_call_draws_fresh_bytes) {
    seeded_random r(1);
    std::array<std::uint8_t, 32> first{}, second{};
    r.fill(first);
    r.fill(second);
    EXPECT_NE(first, second);
}

TEST(random, uniform_rejects_the_biased_low_values) {
    // bound = 2^63 + 1: 2^64 mod bound = 2^63 - 1 values would be over-represented.
    const std::uint64_t bound = (std::uint64_t{1} << 63) + 1;
    scripted_random r({5, std::numeric_limits<std::uint64_t>::max()});
    EXPECT_EQ(r.uniform(bound), std::numeric_limits<std::uint64_t>::max() % bound);
    EXPECT_EQ(r.calls, 2) << "the first draw lies below the threshold and must be redrawn";

    scripted_random one({});
    EXPECT_EQ(one.uniform(1), 0u);
    EXPECT_EQ(one.calls, 0);
}

TEST(random, uniform_stays_in_range_and_spreads) {
    seeded_random r(9);
    std::array<int, 6> counts{};
    for (int i = 0; i < 60000; ++i) {
        const std::uint64_t v = r.uniform(6);
        ASSERT_LT(v, 6u);
        ++counts[v];
    }
    for (int c : counts) {
        EXPECT_GT(c, 9500);
        EXPECT_LT(c, 10500);
    }
}

TEST(random, system_random_is_not_constant) {
    system_random r;
    std::array<std::uint8_t, 32> a{}, b{};
    r.fill(a);
    r.fill(b);
    EXPECT_NE(a, b);
    r.fill(std::span<std::uint8_t>{});
}

// Reference values of splitmix64 (Vigna's splitmix64.c), computed independently of this code.
TEST(splitmix_random, matches_the_reference_words) {
    splitmix_random zero(0);
    EXPECT_EQ(zero.next_u64(), 0xe220a8397b1dcdafULL);
    EXPECT_EQ(zero.next_u64(), 0x6e789e6aa1b965f4ULL);
    EXPECT_EQ(zero.next_u64(), 0x06c45d188009454fULL);
    EXPECT_EQ(zero.next_u64(), 0xf88bb8a8724c81ecULL);
    splitmix_random one(1);
    EXPECT_EQ(one.next_u64(), 0x910a2dec89025cc1ULL);
    EXPECT_EQ(one.next_u64(), 0xbeeb8da1658eec67ULL);
    EXPECT_EQ(one.next_u64(), 0xf893a2eefb32555eULL);
    EXPECT_EQ(one.next_u64(), 0x71c18690ee42c90bULL);
}

TEST(splitmix_random, fill_writes_the_same_words_big_endian) {
    splitmix_random words(7), bytes_of(7);
    std::array<std::uint8_t, 20> out{};
    bytes_of.fill(out);
    const std::uint64_t w0 = words.next_u64(), w1 = words.next_u64(), w2 = words.next_u64();
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(out[i], static_cast<std::uint8_t>(w0 >> (56 - 8 * i)));
        EXPECT_EQ(out[8 + i], static_cast<std::uint8_t>(w1 >> (56 - 8 * i)));
    }
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(out[16 + i], static_cast<std::uint8_t>(w2 >> (56 - 8 * i)));
    // The tail of the third word is dropped: the next draw is the fourth word.
    EXPECT_EQ(bytes_of.next_u64(), words.next_u64());

    // Through the base class, next_u64 and uniform use the cheap word, not fill().
    splitmix_random a(3), b(3);
    random_source& base = a;
    EXPECT_EQ(base.next_u64(), b.next_u64());
    EXPECT_EQ(base.uniform(1000), b.next_u64() % 1000);
}

TEST(splitmix_random, is_deterministic) {
    splitmix_random a(123456789), b(123456789);
    for (int i = 0; i < 1000; ++i)
        ASSERT_EQ(a.next_u64(), b.next_u64()) << "word " << i;
    std::array<std::uint8_t, 33> x{}, y{};
    a.fill(x);
    b.fill(y);
    EXPECT_EQ(x, y);
}

TEST(splitmix_random, streams_are_distinct_and_reproducible) {
    constexpr std::uint64_t master = 42;
    std::set<std::uint64_t> firsts;
    for (std::uint64_t node = 0; node < 64; ++node) {
        splitmix_random s = splitmix_random::stream(master, node);
        splitmix_random again = splitmix_random::stream(master, node);
        const std::uint64_t w = s.next_u64();
        EXPECT_EQ(w, again.next_u64());
        firsts.insert(w);
    }
    EXPECT_EQ(firsts.size(), 64u) << "two node streams started with the same word";
    // A stream is not the master generator itself, and another master moves every stream.
    splitmix_random plain(master);
    splitmix_random s0 = splitmix_random::stream(master, 0);
    EXPECT_NE(plain.next_u64(), s0.next_u64());
    EXPECT_NE(splitmix_random::stream(master, 5).next_u64(),
              splitmix_random::stream(master + 1, 5).next_u64());
    // Stream i is seeded with word i of the master generator, so no two share a start state.
    splitmix_random m(master);
    splitmix_random expected(m.next_u64());
    EXPECT_EQ(splitmix_random::stream(master, 0).next_u64(), expected.next_u64());
}

TEST(splitmix_random, words_spread) {
    splitmix_random r(9);
    std::array<int, 6> counts{};
    for (int i = 0; i < 60000; ++i)
        ++counts[r.uniform(6)];
    for (int c : counts) {
        EXPECT_GT(c, 9500);
        EXPECT_LT(c, 10500);
    }
}

} // namespace
} // namespace glasnode
