// The provider core holds an agent's collect while the provider's own side of authorised flows
// is still draining, and answers once the last of them is reported or collect_wait has passed.
// The flow ledger is the core's: flows are reported by the info-hash they were authorised with.

#include <vector>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"
#include "support.hpp"
#include "tests_proto/negotiation/provider.hpp"

namespace glasnode::proto::negotiation {
namespace {

using namespace std::chrono_literals;
using namespace testing;

struct collect_fixture : ::testing::Test {
    collect_fixture() : random(3), core(options(), random) {}

    static provider_options options() {
        provider_options o;
        o.collect_wait = 5s;
        return o;
    }

    // Grants session 1 the small schedule and authorises flows 0 and 2.
    token_t start_and_authorise() {
        const auto g =
            only_reply<grant>(core.on_negotiate(t0, 1, negotiate_of(small_schedule())), 1);
        EXPECT_TRUE(g);
        const token_t token = g ? g->token : token_t{};
        for (std::uint16_t i : {0, 2}) {
            const flow_spec f = small_schedule()[i];
            EXPECT_TRUE(std::holds_alternative<flow_assignment>(
                core.authorize_flow(t0 + 1s, f.kind, flow_info_hash(token, i), f.port)));
        }
        return token;
    }

    static flow_measurement done(std::uint64_t payload) {
        flow_measurement m;
        m.end = flow_end::completed;
        m.payload_bytes = payload;
        return m;
    }

    seeded_random random;
    provider core;
};

TEST_F(collect_fixture, a_collect_waits_for_the_last_draining_flow) {
    const token_t token = start_and_authorise();
    auto r = core.on_flow_finished(t0 + 3s, flow_info_hash(token, 0), done(100));
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_TRUE(r->empty());
    EXPECT_EQ(core.flows_unreported(1), 1u);

    // Flow 2 is still draining on our side: the collect is held, nothing is sent yet.
    const effects held = core.on_collect(t0 + 4s, 1, collect{});
    EXPECT_EQ(sends_to(held, 1), 0u);
    EXPECT_TRUE(events_of<test_finished>(held).empty());
    ASSERT_TRUE(core.next_expiry());
    EXPECT_EQ(*core.next_expiry(), t0 + 4s + 5s);
    // A second collect meanwhile is refused, the first still held.
    const auto again =
        only_reply<wire::error_message>(core.on_collect(t0 + 4500ms, 1, collect{}), 1);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->code, static_cast<std::uint16_t>(wire::wire_error::refused));

    // The last flow's report answers it, with both flows in.
    r = core.on_flow_finished(t0 + 5s, flow_info_hash(token, 2), done(200));
    ASSERT_TRUE(r) << r.err().describe();
    const auto reply = only_reply<collect_reply>(*r, 1);
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->measurements.size(), 4u);
    EXPECT_EQ(reply->measurements[0].payload_bytes, 100u);
    EXPECT_EQ(reply->measurements[2].payload_bytes, 200u);
    EXPECT_EQ(reply->measurements[1].end, flow_end::not_run);
    const auto finished = events_of<test_finished>(*r);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].reason, finish_reason::completed);
    EXPECT_EQ(finished[0].schedule, small_schedule());
    EXPECT_FALSE(core.is_running(1));
}

TEST_F(collect_fixture, a_held_collect_is_answered_when_the_wait_is_over) {
    const token_t token = start_and_authorise();
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 0), done(100)));
    EXPECT_EQ(sends_to(core.on_collect(t0 + 4s, 1, collect{}), 1), 0u);
    // Just before the wait is over, nothing.
    EXPECT_TRUE(core.handle_expiry(t0 + 8999ms).empty());
    const effects out = core.handle_expiry(t0 + 9s);
    const auto reply = only_reply<collect_reply>(out, 1);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->measurements[0].end, flow_end::completed);
    EXPECT_EQ(reply->measurements[2].end, flow_end::not_run); // never reported
    // ... and, its resets unknown, it counts as a connection that could have reset the agent.
    ASSERT_TRUE(reply->unidentified.has_value());
    EXPECT_EQ(*reply->unidentified, (diff::unidentified_connections{0, 0, 1}));
    ASSERT_EQ(events_of<test_finished>(out).size(), 1u);
    // A report after the answer finds no test.
    const auto late = core.on_flow_finished(t0 + 10s, flow_info_hash(token, 2), done(1));
    ASSERT_FALSE(late);
    EXPECT_EQ(late.err().code, errc::not_found);
}

TEST_F(collect_fixture, a_collect_with_every_flow_in_is_answered_at_once) {
    const token_t token = start_and_authorise();
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 0), done(1)));
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 2), done(2)));
    EXPECT_EQ(core.flows_unreported(1), 0u);
    const effects out = core.on_collect(t0 + 4s, 1, collect{});
    EXPECT_TRUE(only_reply<collect_reply>(out, 1));
    // The same flow twice, or one never authorised, is refused by info-hash too.
    EXPECT_FALSE(core.on_flow_finished(t0 + 4s, flow_info_hash(token, 0), done(1)));
    EXPECT_FALSE(core.on_flow_finished(t0 + 4s, flow_info_hash(token, 9), done(1)));
}

TEST_F(collect_fixture, a_flow_never_authorised_is_refused_by_info_hash) {
    const token_t token = start_and_authorise();
    const auto r = core.on_flow_finished(t0 + 2s, flow_info_hash(token, 1), done(1));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::invalid_argument);
}

TEST_F(collect_fixture, unidentified_connections_of_the_running_test_are_counted_in_the_reply) {
    const token_t token = start_and_authorise();
    // Before any test runs on session 2, and for another session: ignored.
    core.on_unidentified_connection(t0 + 1s, 2, 1, true);
    // Two of session 1's: one the path reset, one we may have reset (closed after reading).
    core.on_unidentified_connection(t0 + 2s, 1, 1, false);
    core.on_unidentified_connection(t0 + 2s, 1, 0, true);
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 0), done(1)));
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 2), done(2)));
    const effects out = core.on_collect(t0 + 4s, 1, collect{});
    const auto reply = only_reply<collect_reply>(out, 1);
    ASSERT_TRUE(reply);
    ASSERT_TRUE(reply->unidentified.has_value());
    EXPECT_EQ(*reply->unidentified, (diff::unidentified_connections{2, 1, 1}));
    const auto finished = events_of<test_finished>(out);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].unidentified, (diff::unidentified_connections{2, 1, 1}));
}

TEST_F(collect_fixture, a_test_without_unidentified_connections_says_so) {
    const token_t token = start_and_authorise();
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 0), done(1)));
    ASSERT_TRUE(core.on_flow_finished(t0 + 3s, flow_info_hash(token, 2), done(2)));
    // After the deadline a connection no longer counts for the test.
    const auto reply = only_reply<collect_reply>(core.on_collect(t0 + 4s, 1, collect{}), 1);
    ASSERT_TRUE(reply);
    ASSERT_TRUE(reply->unidentified.has_value());
    EXPECT_EQ(*reply->unidentified, diff::unidentified_connections{});
}

} // namespace
} // namespace glasnode::proto::negotiation
