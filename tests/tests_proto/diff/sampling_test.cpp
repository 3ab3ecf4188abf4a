// The receiver's sampling rules (tests_proto/diff/sampling.hpp).
#include <chrono>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "tests_proto/diff/sampling.hpp"

namespace glasnode::proto::diff {
namespace {

using namespace std::chrono_literals;

TEST(Sampling, AnUnknownRttPlansTheRequestedResolution) {
    const auto plan = plan_samples(2500ms, 0us, 0us);
    EXPECT_EQ(plan.interval, 25ms);
    EXPECT_EQ(plan.count, 100u);
}

TEST(Sampling, AShortMinimumRttLeavesTheSeriesAsRecorded) {
    std::vector<std::uint64_t> s(100, 7);
    auto interval = std::chrono::microseconds(25ms);
    coarsen_samples(s, interval, 150us); // under cross traffic: the path's own RTT
    EXPECT_EQ(s.size(), 100u);
    EXPECT_EQ(interval, 25ms);
}

TEST(Sampling, ALongMinimumRttMergesToTenOfThem) {
    std::vector<std::uint64_t> s(100);
    for (std::size_t i = 0; i < s.size(); ++i)
        s[i] = i;
    auto interval = std::chrono::microseconds(25ms);
    coarsen_samples(s, interval, 120ms); // 1.2 s: groups of 48
    EXPECT_EQ(interval, 1200ms);
    ASSERT_EQ(s.size(), 3u);
    std::uint64_t total = 0;
    for (std::uint64_t x : s)
        total += x;
    EXPECT_EQ(total, 99u * 100u / 2); // no byte lost or counted twice
    EXPECT_EQ(s[0], 47u * 48u / 2);
    // The same as planning with that RTT from the start.
    const auto plan = plan_samples(2500ms, 0us, 120ms);
    EXPECT_EQ(plan.interval, interval);
    EXPECT_EQ(plan.count, s.size());
}

TEST(Sampling, AnIntervalNotAMultipleRoundsUp) {
    std::vector<std::uint64_t> s(10, 1);
    auto interval = std::chrono::microseconds(10ms);
    coarsen_samples(s, interval, 2500us); // 25 ms wanted: groups of 3
    EXPECT_EQ(interval, 30ms);
    EXPECT_EQ(s, (std::vector<std::uint64_t>{3, 3, 3, 1}));
}

TEST(Sampling, NothingToCoarsenIsLeftAlone) {
    std::vector<std::uint64_t> s;
    auto interval = std::chrono::microseconds(25ms);
    coarsen_samples(s, interval, 120ms);
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(interval, 25ms);
    std::vector<std::uint64_t> t{1, 2};
    coarsen_samples(t, interval, 0us);
    EXPECT_EQ(t, (std::vector<std::uint64_t>{1, 2}));
}

} // namespace
} // namespace glasnode::proto::diff
