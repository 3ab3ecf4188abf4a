#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"
#include "support.hpp"
#include "tests_proto/negotiation/provider.hpp"

namespace glasnode::proto::negotiation {
namespace {

using namespace std::chrono_literals;
using namespace testing;

constexpr std::chrono::milliseconds margin{30'000}; // provider_options::deadline_margin

std::optional<grant> granted(const effects& out, session_id s) {
    return only_reply<grant>(out, s);
}

wire::wire_error error_code(const effects& out, session_id s, std::string* reason = nullptr) {
    auto e = only_reply<wire::error_message>(out, s);
    if (!e)
        return wire::wire_error::other;
    if (reason != nullptr)
        *reason = e->reason;
    return static_cast<wire::wire_error>(e->code);
}

class ProviderTest : public ::testing::Test {
protected:
    explicit ProviderTest(provider_options o = {}) : m_random(1), m_provider(o, m_random) {}

    effects negotiate_small(session_id s, time_point now = t0) {
        return m_provider.on_negotiate(now, s, negotiate_of(small_schedule()));
    }

    // Negotiates and returns the granted token (test failure if not granted at once).
    token_t start_small(session_id s, time_point now = t0) {
        const auto g = granted(negotiate_small(s, now), s);
        EXPECT_TRUE(g.has_value());
        return g ? g->token : token_t{};
    }

    seeded_random m_random;
    provider m_provider;
};

TEST_F(ProviderTest, GrantsAtOnceWhenIdle) {
    const effects out = negotiate_small(1);
    const auto g = granted(out, 1);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->valid_for_ms, static_cast<std::uint64_t>((small_schedule_wall + margin).count()));
    const auto events = events_of<test_granted>(out);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].session, 1u);
    EXPECT_EQ(events[0].token, g->token);
    EXPECT_EQ(events[0].deadline, t0 + small_schedule_wall + margin);
    EXPECT_EQ(events[0].schedule, small_schedule());
    EXPECT_EQ(m_provider.next_expiry(), t0 + small_schedule_wall + margin);
    EXPECT_TRUE(m_provider.is_running(1));
    EXPECT_EQ(m_provider.running(), 1u);
    EXPECT_EQ(m_provider.waiting(), 0u);
}

TEST_F(ProviderTest, QueueIsFifoWithPositionUpdates) {
    start_small(1);
    for (session_id s = 2; s <= 4; ++s) {
        const effects out = negotiate_small(s);
        const auto qs = only_reply<queue_status>(out, s);
        ASSERT_TRUE(qs);
        EXPECT_EQ(qs->position, s - 1);
        EXPECT_EQ(qs->queue_length, s - 1);
        // Joining the back moves nobody else.
        for (session_id other = 1; other < s; ++other)
            EXPECT_EQ(sends_to(out, other), 0u);
        EXPECT_EQ(m_provider.queue_position(s), s - 1);
    }

    // Session 1 collects: 2 is granted, 3 and 4 move up.
    effects out = m_provider.on_collect(t0 + 5s, 1, collect{});
    EXPECT_TRUE(granted(out, 2));
    auto qs3 = only_reply<queue_status>(out, 3);
    auto qs4 = only_reply<queue_status>(out, 4);
    ASSERT_TRUE(qs3 && qs4);
    EXPECT_EQ(*qs3, (queue_status{1, 2}));
    EXPECT_EQ(*qs4, (queue_status{2, 2}));

    // Then 3, then 4, in arrival order.
    out = m_provider.on_cancel(t0 + 6s, 2);
    EXPECT_TRUE(granted(out, 3));
    EXPECT_EQ(*only_reply<queue_status>(out, 4), (queue_status{1, 1}));
    out = m_provider.on_collect(t0 + 7s, 3, collect{});
    EXPECT_TRUE(granted(out, 4));
    EXPECT_EQ(m_provider.waiting(), 0u);
    EXPECT_TRUE(m_provider.is_running(4));
}

TEST(ProviderQueue, FullQueueAnswersBusy) {
    seeded_random random(2);
    provider_options o;
    o.max_queue = 2;
    provider p(o, random);
    EXPECT_TRUE(granted(p.on_negotiate(t0, 1, negotiate_of(small_schedule())), 1));
    EXPECT_TRUE(only_reply<queue_status>(p.on_negotiate(t0, 2, negotiate_of(small_schedule())), 2));
    EXPECT_TRUE(only_reply<queue_status>(p.on_negotiate(t0, 3, negotiate_of(small_schedule())), 3));
    std::string reason;
    const effects out = p.on_negotiate(t0, 4, negotiate_of(small_schedule()));
    EXPECT_EQ(error_code(out, 4, &reason), wire::wire_error::busy);
    EXPECT_NE(reason.find("queue full"), std::string::npos) << reason;
    EXPECT_EQ(p.waiting(), 2u);
    EXPECT_FALSE(p.queue_position(4));
    // No one else hears about it.
    EXPECT_EQ(out.size(), 1u);
}

TEST(ProviderQueue, SeveralSlotsRunConcurrently) {
    seeded_random random(3);
    provider_options o;
    o.max_active = 2;
    provider p(o, random);
    const auto g1 = granted(p.on_negotiate(t0, 1, negotiate_of(small_schedule())), 1);
    const auto g2 = granted(p.on_negotiate(t0 + 1s, 2, negotiate_of(small_schedule())), 2);
    ASSERT_TRUE(g1 && g2);
    EXPECT_NE(g1->token, g2->token);
    EXPECT_EQ(*only_reply<queue_status>(p.on_negotiate(t0, 3, negotiate_of(small_schedule())), 3),
              (queue_status{1, 1}));
    EXPECT_EQ(p.next_expiry(), t0 + small_schedule_wall + margin);
    EXPECT_TRUE(granted(p.on_session_closed(t0 + 2s, 2), 3));
}

TEST(ProviderTokens, ComeFromTheInjectedSource) {
    counting_random random;
    provider p({}, random);
    const auto g = granted(p.on_negotiate(t0, 1, negotiate_of(small_schedule())), 1);
    ASSERT_TRUE(g);
    token_t expected{};
    for (std::size_t i = 0; i < expected.size(); ++i)
        expected[i] = static_cast<std::uint8_t>(i + 1);
    EXPECT_EQ(g->token, expected);
}

TEST(ProviderTokens, AreUniqueAcrossTests) {
    seeded_random random(4);
    provider_options o;
    o.max_active = 4;
    provider p(o, random);
    std::set<token_t> tokens;
    time_point now = t0;
    for (session_id s = 1; s <= 200; ++s) {
        const auto g = granted(p.on_negotiate(now, s, negotiate_of(small_schedule())), s);
        ASSERT_TRUE(g);
        tokens.insert(g->token);
        if (s % 4 == 0) {
            for (session_id done = s - 3; done <= s; ++done)
                (void)p.on_collect(now, done, collect{});
        }
        now += 1s;
    }
    EXPECT_EQ(tokens.size(), 200u);
}

TEST(ProviderTokens, ABrokenSourceCannotGrantTwoTestsTheSameToken) {
    constant_random random;
    provider_options o;
    o.max_active = 2;
    provider p(o, random);
    EXPECT_TRUE(granted(p.on_negotiate(t0, 1, negotiate_of(small_schedule())), 1));
    const effects out = p.on_negotiate(t0, 2, negotiate_of(small_schedule()));
    EXPECT_EQ(error_code(out, 2), wire::wire_error::internal);
    EXPECT_FALSE(p.is_running(2));
    EXPECT_EQ(p.running(), 1u);
}

TEST_F(ProviderTest, AuthorizesEachFlowOnce) {
    const token_t token = start_small(9);
    ASSERT_EQ(small_schedule().size(), 4u);
    std::size_t authorized = 0;
    for (const flow_spec& f : small_schedule()) {
        const info_hash_t ih = flow_info_hash(token, f.index);
        const flow_authorization a = m_provider.authorize_flow(t0 + 1s, f.kind, ih, f.port);
        const auto* assignment = std::get_if<flow_assignment>(&a);
        ASSERT_NE(assignment, nullptr) << "flow " << f.index;
        EXPECT_EQ(assignment->session, 9u);
        EXPECT_EQ(assignment->index, f.index);
        EXPECT_EQ(assignment->spec, f);
        EXPECT_EQ(assignment->role, provider_role(f.dir));
        EXPECT_EQ(assignment->deadline, t0 + small_schedule_wall + margin);
        ++authorized;

        const flow_authorization again = m_provider.authorize_flow(t0 + 2s, f.kind, ih, f.port);
        ASSERT_TRUE(std::holds_alternative<flow_refusal>(again));
        EXPECT_EQ(std::get<flow_refusal>(again), flow_refusal::already_used);
    }
    EXPECT_EQ(authorized, 4u);
}

TEST_F(ProviderTest, RefusesUnknownWrongKindAndWrongPort) {
    const token_t token = start_small(1);
    info_hash_t stranger{};
    stranger.fill(0x5a);
    EXPECT_EQ(std::get<flow_refusal>(m_provider.authorize_flow(t0, flow_kind::bt, stranger)),
              flow_refusal::unknown_token);
    // The test token's own hash is not a flow's.
    EXPECT_EQ(std::get<flow_refusal>(
                  m_provider.authorize_flow(t0, flow_kind::bt, diff::info_hash_of_token(token))),
              flow_refusal::unknown_token);

    // Flow 0 is a BT flow on the BT port.
    const info_hash_t flow0 = flow_info_hash(token, 0);
    EXPECT_EQ(std::get<flow_refusal>(m_provider.authorize_flow(t0, flow_kind::control, flow0)),
              flow_refusal::wrong_kind);
    EXPECT_EQ(std::get<flow_refusal>(
                  m_provider.authorize_flow(t0, flow_kind::bt, flow0, test_port::neutral)),
              flow_refusal::wrong_port);
    // Refusals do not use the flow up.
    EXPECT_TRUE(std::holds_alternative<flow_assignment>(
        m_provider.authorize_flow(t0, flow_kind::bt, flow0, test_port::bt)));
    // Without a port, the port is not checked.
    const info_hash_t flow3 = flow_info_hash(token, 3);
    EXPECT_TRUE(std::holds_alternative<flow_assignment>(
        m_provider.authorize_flow(t0, flow_kind::control, flow3)));
}

TEST_F(ProviderTest, RefusesExpiredAndFinishedTests) {
    const token_t token = start_small(1);
    const time_point deadline = t0 + small_schedule_wall + margin;
    const info_hash_t flow1 = flow_info_hash(token, 1);
    // At the deadline, before the driver's timer fires.
    EXPECT_EQ(
        std::get<flow_refusal>(m_provider.authorize_flow(deadline, flow_kind::control, flow1)),
        flow_refusal::expired);
    // After the timer fired the test is gone, but remembered.
    (void)m_provider.handle_expiry(deadline);
    EXPECT_EQ(
        std::get<flow_refusal>(m_provider.authorize_flow(deadline + 1s, flow_kind::control, flow1)),
        flow_refusal::expired);

    const token_t second = start_small(2, deadline + 2s);
    (void)m_provider.on_collect(deadline + 3s, 2, collect{});
    EXPECT_EQ(std::get<flow_refusal>(m_provider.authorize_flow(deadline + 4s, flow_kind::bt,
                                                               flow_info_hash(second, 0))),
              flow_refusal::finished);
}

TEST(ProviderMemory, ForgetsOldTestsBeyondItsBound) {
    seeded_random random(5);
    provider_options o;
    o.remembered_tests = 2;
    provider p(o, random);
    std::vector<token_t> tokens;
    for (session_id s = 1; s <= 3; ++s) {
        const auto g = granted(p.on_negotiate(t0, s, negotiate_of(small_schedule())), s);
        ASSERT_TRUE(g);
        tokens.push_back(g->token);
        (void)p.on_collect(t0, s, collect{});
    }
    EXPECT_EQ(
        std::get<flow_refusal>(p.authorize_flow(t0, flow_kind::bt, flow_info_hash(tokens[0], 0))),
        flow_refusal::unknown_token);
    EXPECT_EQ(
        std::get<flow_refusal>(p.authorize_flow(t0, flow_kind::bt, flow_info_hash(tokens[1], 0))),
        flow_refusal::finished);
}

TEST_F(ProviderTest, DeadlineFreesTheSlotAndGrantsTheNextAgent) {
    start_small(1);
    ASSERT_TRUE(only_reply<queue_status>(negotiate_small(2, t0 + 1s), 2));
    const time_point deadline = t0 + small_schedule_wall + margin;
    ASSERT_EQ(m_provider.next_expiry(), deadline);

    EXPECT_TRUE(m_provider.handle_expiry(deadline - 1ms).empty());
    EXPECT_TRUE(m_provider.is_running(1));

    const effects out = m_provider.handle_expiry(deadline);
    const auto finished = events_of<test_finished>(out);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].session, 1u);
    EXPECT_EQ(finished[0].reason, finish_reason::expired);
    EXPECT_EQ(finished[0].provider_measurements.size(), small_schedule().size());
    EXPECT_EQ(error_code(out, 1), wire::wire_error::refused);
    EXPECT_TRUE(granted(out, 2));
    EXPECT_TRUE(m_provider.is_running(2));
    // The new test's clock starts when it is granted, not when it queued.
    EXPECT_EQ(m_provider.next_expiry(), deadline + small_schedule_wall + margin);
}

TEST_F(ProviderTest, LateInputsExpireTheTestFirst) {
    start_small(1);
    const time_point deadline = t0 + small_schedule_wall + margin;
    // The timer has not fired, but a negotiate arrives after the deadline: 1 expires, 2 runs.
    const effects out = negotiate_small(2, deadline + 5s);
    ASSERT_EQ(events_of<test_finished>(out).size(), 1u);
    EXPECT_EQ(events_of<test_finished>(out)[0].reason, finish_reason::expired);
    EXPECT_TRUE(granted(out, 2));
    // A collect after the deadline finds no test.
    std::string reason;
    EXPECT_EQ(error_code(m_provider.on_collect(deadline + 6s, 1, collect{}), 1, &reason),
              wire::wire_error::refused);
    EXPECT_NE(reason.find("no running test"), std::string::npos);
}

TEST_F(ProviderTest, ClosingAQueuedSessionMovesTheOthersUp) {
    start_small(1);
    for (session_id s = 2; s <= 4; ++s)
        ASSERT_TRUE(only_reply<queue_status>(negotiate_small(s), s));

    const effects out = m_provider.on_session_closed(t0 + 1s, 3);
    EXPECT_EQ(sends_to(out, 3), 0u);
    EXPECT_EQ(sends_to(out, 2), 0u); // its position did not change
    EXPECT_EQ(*only_reply<queue_status>(out, 4), (queue_status{2, 2}));
    EXPECT_TRUE(events_of<test_finished>(out).empty());
    EXPECT_EQ(m_provider.queue_position(2), 1u);
    EXPECT_EQ(m_provider.queue_position(4), 2u);
    EXPECT_FALSE(m_provider.queue_position(3));
    EXPECT_TRUE(m_provider.is_running(1));

    // Closing the head moves everyone.
    const effects head = m_provider.on_cancel(t0 + 2s, 2);
    EXPECT_EQ(*only_reply<queue_status>(head, 4), (queue_status{1, 1}));
}

TEST_F(ProviderTest, ClosingTheRunningSessionFreesTheSlot) {
    const token_t token = start_small(1);
    ASSERT_TRUE(only_reply<queue_status>(negotiate_small(2), 2));
    const effects out = m_provider.on_session_closed(t0 + 3s, 1);
    EXPECT_EQ(sends_to(out, 1), 0u);
    const auto finished = events_of<test_finished>(out);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].reason, finish_reason::session_closed);
    EXPECT_EQ(finished[0].token, token);
    EXPECT_TRUE(granted(out, 2));
    // Events come in the order the driver must apply them: finish before the next grant.
    const auto first_finished = std::find_if(out.begin(), out.end(), [](const effect& e) {
        return std::holds_alternative<test_finished>(e);
    });
    const auto first_granted = std::find_if(out.begin(), out.end(), [](const effect& e) {
        return std::holds_alternative<test_granted>(e);
    });
    EXPECT_LT(first_finished, first_granted);
    EXPECT_EQ(std::get<flow_refusal>(
                  m_provider.authorize_flow(t0 + 4s, flow_kind::bt, flow_info_hash(token, 0))),
              flow_refusal::finished);
}

TEST_F(ProviderTest, CancelEndsTheRunningTest) {
    start_small(1);
    const effects out = m_provider.on_cancel(t0 + 1s, 1);
    const auto finished = events_of<test_finished>(out);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].reason, finish_reason::cancelled);
    EXPECT_EQ(m_provider.running(), 0u);
    EXPECT_FALSE(m_provider.next_expiry());
    // A cancel with nothing to cancel changes nothing.
    EXPECT_TRUE(m_provider.on_cancel(t0 + 2s, 1).empty());
}

TEST_F(ProviderTest, CollectReturnsTheProvidersMeasurementsAndFinishes) {
    const token_t token = start_small(1);
    ASSERT_TRUE(only_reply<queue_status>(negotiate_small(2), 2));
    for (std::uint16_t i : {0, 2}) {
        const flow_spec f = small_schedule()[i];
        ASSERT_TRUE(std::holds_alternative<flow_assignment>(
            m_provider.authorize_flow(t0 + 1s, f.kind, flow_info_hash(token, i), f.port)));
        flow_measurement m;
        m.index = 999;             // corrected by the provider
        m.role = flow_role::leech; // corrected by the provider
        m.end = flow_end::completed;
        m.payload_bytes = 1000u + i;
        m.sample_interval_us = 100'000;
        m.samples = {10, 20, 30};
        m.congestion_control = "cubic";
        ASSERT_TRUE(m_provider.on_flow_finished(t0 + 4s, 1, i, m).ok());
    }

    collect agent_side;
    flow_measurement am;
    am.index = 0;
    am.role = flow_role::leech;
    am.end = flow_end::reset_received;
    am.resets_received = 1;
    agent_side.measurements.push_back(am);

    const effects out = m_provider.on_collect(t0 + 10s, 1, agent_side);
    const auto reply = only_reply<collect_reply>(out, 1);
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->measurements.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
        const flow_measurement& m = reply->measurements[i];
        EXPECT_EQ(m.index, i);
        EXPECT_EQ(m.role, provider_role(small_schedule()[i].dir));
        if (i == 0 || i == 2) {
            EXPECT_EQ(m.end, flow_end::completed);
            EXPECT_EQ(m.payload_bytes, 1000u + i);
            EXPECT_EQ(m.samples, (std::vector<std::uint64_t>{10, 20, 30}));
        } else {
            EXPECT_EQ(m.end, flow_end::not_run);
        }
    }
    const auto finished = events_of<test_finished>(out);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].reason, finish_reason::completed);
    EXPECT_EQ(finished[0].provider_measurements, reply->measurements);
    EXPECT_EQ(finished[0].agent_measurements, agent_side.measurements);
    EXPECT_TRUE(granted(out, 2));
    EXPECT_FALSE(m_provider.is_running(1));

    // The session may negotiate again; it queues behind 2.
    EXPECT_EQ(*only_reply<queue_status>(negotiate_small(1, t0 + 11s), 1), (queue_status{1, 1}));
}

TEST_F(ProviderTest, FlowReportsAreChecked) {
    const token_t token = start_small(1);
    flow_measurement m;
    m.end = flow_end::completed;
    EXPECT_EQ(m_provider.on_flow_finished(t0, 2, 0, m).err().code, errc::not_found);
    EXPECT_EQ(m_provider.on_flow_finished(t0, 1, 77, m).err().code, errc::not_found);
    EXPECT_EQ(m_provider.on_flow_finished(t0, 1, 0, m).err().code, errc::invalid_argument)
        << "never authorised";
    ASSERT_TRUE(std::holds_alternative<flow_assignment>(
        m_provider.authorize_flow(t0, flow_kind::bt, flow_info_hash(token, 0))));
    flow_measurement bad = m;
    bad.congestion_control = std::string(40, 'x');
    EXPECT_EQ(m_provider.on_flow_finished(t0, 1, 0, bad).err().code, errc::invalid_argument);
    EXPECT_TRUE(m_provider.on_flow_finished(t0, 1, 0, m).ok());
    EXPECT_EQ(m_provider.on_flow_finished(t0, 1, 0, m).err().code, errc::invalid_argument)
        << "reported twice";
    ASSERT_TRUE(std::holds_alternative<flow_assignment>(
        m_provider.authorize_flow(t0, flow_kind::control, flow_info_hash(token, 1))));
    EXPECT_EQ(m_provider.on_flow_finished(t0 + small_schedule_wall + margin, 1, 1, m).err().code,
              errc::timeout);
}

TEST(ProviderSamples, ReportsAreMergedDownToTheSampleBudget) {
    seeded_random random(6);
    provider p({}, random);
    std::vector<flow_spec> schedule;
    for (std::uint16_t i = 0; i < 64; ++i)
        schedule.push_back(spec(i, direction::download, test_port::bt, flow_kind::bt, i / 4, 500));
    const auto g = granted(p.on_negotiate(t0, 1, negotiate_of(schedule)), 1);
    ASSERT_TRUE(g);
    for (std::uint16_t i = 0; i < 64; ++i) {
        ASSERT_TRUE(std::holds_alternative<flow_assignment>(
            p.authorize_flow(t0, flow_kind::bt, flow_info_hash(g->token, i))));
        flow_measurement m;
        m.end = flow_end::completed;
        m.sample_interval_us = 500;
        m.samples.assign(max_samples_per_flow, 3);
        ASSERT_TRUE(p.on_flow_finished(t0 + 1s, 1, i, m).ok());
    }
    const effects out = p.on_collect(t0 + 2s, 1, collect{});
    const auto reply = only_reply<collect_reply>(out, 1);
    ASSERT_TRUE(reply); // it decoded, so it is within the message bounds
    ASSERT_EQ(reply->measurements.size(), 64u);
    std::uint16_t index = 0;
    for (const flow_measurement& m : reply->measurements) {
        EXPECT_EQ(m.index, index++);
        EXPECT_LE(m.samples.size(), sample_budget(64));
        EXPECT_EQ(m.samples.size(), 250u); // 1000 -> 500 -> 250
        EXPECT_EQ(m.sample_interval_us, 2000u);
        EXPECT_EQ(m.samples.front(), 12u);
    }
}

TEST_F(ProviderTest, RefusesBadSchedulesNamesAndVersions) {
    std::string reason;
    auto bad = small_schedule();
    bad[0].duration_ms = 100;
    EXPECT_EQ(error_code(m_provider.on_negotiate(t0, 1, negotiate_of(bad)), 1, &reason),
              wire::wire_error::refused);
    EXPECT_NE(reason.find("schedule refused: flow 0 lasts 100 ms"), std::string::npos) << reason;

    negotiate other = negotiate_of(small_schedule());
    other.test_name = "speed";
    EXPECT_EQ(error_code(m_provider.on_negotiate(t0, 1, other), 1, &reason),
              wire::wire_error::refused);
    EXPECT_NE(reason.find("unknown test"), std::string::npos) << reason;

    negotiate newer = negotiate_of(small_schedule());
    newer.test_version = diff_test_version + 1;
    EXPECT_EQ(error_code(m_provider.on_negotiate(t0, 1, newer), 1),
              wire::wire_error::unsupported_version);

    EXPECT_EQ(m_provider.running(), 0u);
    EXPECT_EQ(m_provider.waiting(), 0u);
    // The session is still welcome with a good request.
    EXPECT_TRUE(granted(negotiate_small(1), 1));
    // But one test per session.
    EXPECT_EQ(error_code(negotiate_small(1), 1, &reason), wire::wire_error::refused);
    EXPECT_NE(reason.find("already has a test"), std::string::npos) << reason;
}

TEST(ProviderOptions, PolicyBoundsApply) {
    seeded_random random(8);
    provider_options o;
    o.bounds.max_flows = 2;
    o.bounds.max_test_wall = 10s;
    provider p(o, random);
    std::string reason;
    EXPECT_EQ(error_code(p.on_negotiate(t0, 1, negotiate_of(small_schedule())), 1, &reason),
              wire::wire_error::refused);
    EXPECT_NE(reason.find("at most 2"), std::string::npos) << reason;
    std::vector<flow_spec> two = {small_schedule()[0], small_schedule()[1]};
    EXPECT_TRUE(granted(p.on_negotiate(t0, 1, negotiate_of(two)), 1));
    // Options outside what the wire can carry are clamped.
    provider_options wild;
    wild.bounds.max_flows = 100'000;
    wild.max_active = 0;
    provider q(wild, random);
    EXPECT_EQ(q.options().bounds.max_flows, max_schedule_flows);
    EXPECT_EQ(q.options().max_active, 1u);
}

TEST_F(ProviderTest, MalformedBytesAreAProtocolErrorThatClosesTheSession) {
    const bytes garbage = {0x93, 0x01, 0xcd};
    effects out = m_provider.receive(t0, 5, garbage);
    ASSERT_EQ(out.size(), 1u);
    const auto& s = std::get<send_message>(out[0]);
    EXPECT_TRUE(s.close_after);
    EXPECT_EQ(error_code(out, 5), wire::wire_error::protocol);

    // A message the provider never accepts from an agent.
    out = m_provider.receive(t0, 5, wire::encode_message(grant{}));
    EXPECT_EQ(error_code(out, 5), wire::wire_error::protocol);
    EXPECT_TRUE(std::get<send_message>(out[0]).close_after);

    // An oversized schedule.
    negotiate big;
    for (std::size_t i = 0; i <= max_schedule_flows; ++i)
        big.schedule.push_back(spec(static_cast<std::uint16_t>(i), direction::upload, test_port::bt,
                                    flow_kind::bt, 0, 1000));
    out = m_provider.receive(t0, 5, wire::encode_message(big));
    EXPECT_EQ(error_code(out, 5), wire::wire_error::limit_exceeded);
    EXPECT_EQ(m_provider.running(), 0u);
}

TEST_F(ProviderTest, ReceiveDispatchesEncodedRequests) {
    effects out = m_provider.receive(t0, 1, wire::encode_message(negotiate_of(small_schedule())));
    ASSERT_TRUE(granted(out, 1));
    out = m_provider.receive(t0 + 1s, 1, wire::encode_message(collect{}));
    EXPECT_TRUE(only_reply<collect_reply>(out, 1));
    EXPECT_EQ(events_of<test_finished>(out).size(), 1u);
    out = m_provider.receive(t0 + 2s, 1, wire::encode_message(negotiate_of(small_schedule())));
    ASSERT_TRUE(granted(out, 1));
    out = m_provider.receive(t0 + 3s, 1, wire::encode_message(cancel{}));
    ASSERT_EQ(events_of<test_finished>(out).size(), 1u);
    EXPECT_EQ(events_of<test_finished>(out)[0].reason, finish_reason::cancelled);
}

// Flattens effects into comparable text: message bytes in hex, events with their fields.
std::vector<std::string> transcript(const effects& out) {
    std::vector<std::string> t;
    for (const effect& e : out) {
        if (const auto* s = std::get_if<send_message>(&e)) {
            t.push_back("send " + std::to_string(s->session) + " " + to_hex(s->message) +
                        (s->close_after ? " close" : ""));
        } else if (const auto* g = std::get_if<test_granted>(&e)) {
            t.push_back("granted " + std::to_string(g->session) + " " + to_hex(g->token) + " " +
                        std::to_string(g->deadline.time_since_epoch().count()));
        } else if (const auto* f = std::get_if<test_finished>(&e)) {
            t.push_back("finished " + std::to_string(f->session) + " " + to_hex(f->token) + " " +
                        std::string(to_string(f->reason)));
        }
    }
    return t;
}

std::vector<std::string> scripted_run(std::uint64_t seed) {
    seeded_random random(seed);
    provider_options o;
    o.max_queue = 3;
    provider p(o, random);
    std::vector<std::string> all;
    const auto add = [&all](const effects& out) {
        const auto t = transcript(out);
        all.insert(all.end(), t.begin(), t.end());
    };
    time_point now = t0;
    for (session_id s = 1; s <= 5; ++s) {
        add(p.receive(now, s, wire::encode_message(negotiate_of(small_schedule()))));
        now += 100ms;
    }
    add(p.on_session_closed(now, 3));
    add(p.receive(now + 1s, 1, wire::encode_message(collect{})));
    add(p.handle_expiry(*p.next_expiry()));
    add(p.receive(*p.next_expiry() - 1ms, 4, wire::encode_message(cancel{})));
    add(p.handle_expiry(*p.next_expiry() + 1h));
    return all;
}

TEST(ProviderDeterminism, SameSeedSameEffects) {
    const auto a = scripted_run(42);
    const auto b = scripted_run(42);
    EXPECT_GT(a.size(), 10u);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, scripted_run(43)); // the tokens differ
}

} // namespace
} // namespace glasnode::proto::negotiation

namespace glasnode::proto::negotiation {
namespace {

// The pacing cap of a test's provider seeds: the agent's, lowered to the provider's own.
std::uint64_t assigned_rate(std::uint64_t agent_cap, std::uint64_t provider_cap) {
    seeded_random rng(3);
    provider_options o;
    o.max_rate_bps = provider_cap;
    provider p(o, rng);
    negotiate m = negotiate_of(small_schedule());
    m.max_rate_bps = agent_cap;
    const auto g = only_reply<grant>(p.on_negotiate(t0, 4, m), 4);
    EXPECT_TRUE(g.has_value());
    if (!g)
        return 0;
    const flow_spec f = small_schedule().front();
    const auto a = p.authorize_flow(t0 + 1s, f.kind, flow_info_hash(g->token, f.index), f.port);
    const auto* assignment = std::get_if<flow_assignment>(&a);
    EXPECT_NE(assignment, nullptr) << to_string(std::get<flow_refusal>(a));
    return assignment != nullptr ? assignment->max_rate_bps : 0;
}

TEST(ProviderPacing, SeedsPaceAtTheLowerOfBothCaps) {
    EXPECT_EQ(assigned_rate(0, 0), 0u); // nobody asked: no cap
    EXPECT_EQ(assigned_rate(40'000'000, 0), 40'000'000u);
    EXPECT_EQ(assigned_rate(0, 10'000'000), 10'000'000u);
    EXPECT_EQ(assigned_rate(40'000'000, 10'000'000), 10'000'000u);
    EXPECT_EQ(assigned_rate(5'000'000, 10'000'000), 5'000'000u);
}

} // namespace
} // namespace glasnode::proto::negotiation
