// The leecher's request pipeline sizing (detail::next_pipeline_target): pure arithmetic over one
// period's rate, so its start-up and steady-state behaviour can be pinned without a network.
#include <cstdint>

#include <gtest/gtest.h>

#include "node/flow/flow_session.hpp"
#include "tests_proto/diff/bt_wire.hpp"

namespace glasnode::node::detail {
namespace {

constexpr double block = proto::diff::block_size;
constexpr double mbit = 1e6 / 8; // bytes/s per Mbit/s

TEST(Pipeline, TheFirstPeriodOfSlowStartDoesNotShrinkIt) {
    // 120 ms RTT: the first period (two round trips) is mostly the wait for the first piece.
    const auto next =
        next_pipeline_target({.target = 16, .rate = 2 * mbit, .last_rate = 0, .min_rtt_s = 0.120});
    EXPECT_GE(next, 16u);
}

TEST(Pipeline, APipelineThatLimitsTheFlowGrowsAsSlowStartDoes) {
    // 16 blocks passing once a round trip: the pipeline, not the path, sets the rate.
    const double rate = 16 * block / 0.120;
    const auto next = next_pipeline_target(
        {.target = 16, .rate = rate, .last_rate = rate / 2, .min_rtt_s = 0.120});
    EXPECT_GE(next, 64u); // twice a round trip over a period of two
}

TEST(Pipeline, AtThePathsRateItHoldsTwoRoundTripsAndMargin) {
    // 50 Mbit/s at 120 ms RTT, rate no longer rising: rate x (2 RTT + 20 ms), not four times it.
    const double rate = 50 * mbit;
    const double held = rate * 0.260 / block;
    const auto next = next_pipeline_target({.target = static_cast<std::uint32_t>(held),
                                            .rate = rate,
                                            .last_rate = rate,
                                            .min_rtt_s = 0.120});
    EXPECT_NEAR(next, held, 2.0);
}

TEST(Pipeline, AtShortRoundTripsTheMarginSetsIt) {
    const double rate = 50 * mbit;
    const double held = rate * (0.0002 + 0.020) / block;
    const auto next = next_pipeline_target({.target = static_cast<std::uint32_t>(held),
                                            .rate = rate,
                                            .last_rate = rate,
                                            .min_rtt_s = 0.0001});
    EXPECT_NEAR(next, held, 1.0);
}

TEST(Pipeline, BehindAThrottleItHalvesEachPeriodDownToItsFloor) {
    // 2 Mbit/s with a deep queue: the requests wait, the rate does not rise.
    pipeline_state s{.target = 64,
                     .rate = 2 * mbit,
                     .last_rate = 2 * mbit,
                     .min_rtt_s = 0.005,
                     .request_wait_s = 0.2};
    s.target = next_pipeline_target(s);
    EXPECT_EQ(s.target, 32u);
    for (int i = 0; i < 10; ++i)
        s.target = next_pipeline_target(s);
    EXPECT_LE(s.target * block, 2 * mbit * 0.3); // under a third of a second at the throttle
    EXPECT_GE(s.target, 4u);
}

TEST(Pipeline, AQueueOfRequestsDoesNotMakeItGrowWithoutBound) {
    // A pipeline that requests fill only because they wait 300 ms behind another flow: sized by
    // the wait, not multiplied period after period.
    const double rate = 20 * mbit;
    pipeline_state s{.target = 200,
                     .rate = rate,
                     .last_rate = rate,
                     .min_rtt_s = 0.010,
                     .request_wait_s = 0.300};
    for (int i = 0; i < 10; ++i)
        s.target = next_pipeline_target(s);
    EXPECT_NEAR(s.target, rate * (0.020 + 0.020 + 0.300) / block, 2.0);
}

} // namespace
} // namespace glasnode::node::detail
