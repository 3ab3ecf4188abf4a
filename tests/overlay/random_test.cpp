#include <array>
#include <deque>

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

} // namespace
} // namespace glasnode
