#include <vector>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"
#include "support.hpp"
#include "tests_proto/negotiation/agent.hpp"
#include "tests_proto/negotiation/provider.hpp"

namespace glasnode::proto::negotiation {
namespace {

using namespace std::chrono_literals;
using namespace testing;

TEST(Agent, NegotiateCarriesTheSchedule) {
    auto bytes_or = make_negotiate(small_schedule());
    ASSERT_TRUE(bytes_or.ok()) << bytes_or.err().describe();
    auto m = wire::decode_message<negotiate>(*bytes_or);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->test_name, diff_test_name);
    EXPECT_EQ(m->test_version, diff_test_version);
    EXPECT_EQ(m->schedule, small_schedule());
}

TEST(Agent, NegotiateChecksTheScheduleLocally) {
    auto bad = small_schedule();
    bad[1].index = 0;
    auto r = make_negotiate(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
    schedule_bounds tight;
    tight.max_test_wall = 5s;
    EXPECT_FALSE(make_negotiate(small_schedule(), tight).ok());
}

TEST(Agent, DecodesEveryProviderReply) {
    auto qs = decode_provider_reply(wire::encode_message(queue_status{2, 5}));
    ASSERT_TRUE(qs.ok());
    EXPECT_EQ(std::get<queue_status>(*qs), (queue_status{2, 5}));

    grant g;
    g.token.fill(7);
    g.valid_for_ms = 45'000;
    auto gr = decode_provider_reply(wire::encode_message(g));
    ASSERT_TRUE(gr.ok());
    EXPECT_EQ(std::get<grant>(*gr), g);

    wire::error_message e;
    e.code = static_cast<std::uint16_t>(wire::wire_error::busy);
    e.reason = "queue full";
    auto er = decode_provider_reply(wire::encode_message(e));
    ASSERT_TRUE(er.ok());
    EXPECT_EQ(std::get<wire::error_message>(*er).reason, "queue full");

    collect_reply cr;
    cr.measurements.resize(2);
    cr.measurements[1].index = 1;
    auto crr = decode_provider_reply(wire::encode_message(cr));
    ASSERT_TRUE(crr.ok());
    EXPECT_EQ(std::get<collect_reply>(*crr), cr);
}

TEST(Agent, RejectsWhatAProviderNeverSends) {
    auto r = decode_provider_reply(wire::encode_message(negotiate_of(small_schedule())));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::protocol_error);
    EXPECT_FALSE(decode_provider_reply(make_cancel()).ok());
    EXPECT_FALSE(decode_provider_reply(wire::encode_message(wire::ping{1})).ok());
    EXPECT_FALSE(decode_provider_reply(bytes{}).ok());
}

TEST(Agent, CollectFitsSamplesAndBoundsTheList) {
    std::vector<flow_measurement> list(64);
    for (std::size_t i = 0; i < list.size(); ++i) {
        list[i].index = static_cast<std::uint16_t>(i);
        list[i].sample_interval_us = 1000;
        list[i].samples.assign(max_samples_per_flow, 1);
    }
    auto encoded = make_collect(list);
    ASSERT_TRUE(encoded.ok()) << encoded.err().describe();
    auto back = wire::decode_message<collect>(*encoded);
    ASSERT_TRUE(back.ok()) << back.err().describe();
    ASSERT_EQ(back->measurements.size(), list.size());
    for (const flow_measurement& m : back->measurements) {
        EXPECT_EQ(m.samples.size(), 250u);
        EXPECT_EQ(m.sample_interval_us, 4000u);
    }

    EXPECT_EQ(make_collect(std::vector<flow_measurement>(max_schedule_flows + 1)).err().code,
              errc::limit_exceeded);
    std::vector<flow_measurement> bad(1);
    bad[0].congestion_control = std::string(max_congestion_name + 1, 'c');
    EXPECT_EQ(make_collect(bad).err().code, errc::invalid_argument);
}

TEST(Agent, PlannedFlowsAreTheOnesTheProviderAuthorizes) {
    seeded_random random(11);
    provider p({}, random);
    auto request = make_negotiate(small_schedule());
    ASSERT_TRUE(request.ok());
    const effects granted_out = p.receive(t0, 1, *request);
    const auto replies = replies_to(granted_out, 1);
    ASSERT_EQ(replies.size(), 1u);
    const grant g = std::get<grant>(replies[0]);

    const auto plan = plan_flows(g.token, small_schedule());
    ASSERT_EQ(plan.size(), small_schedule().size());
    std::vector<flow_measurement> agent_side;
    for (const agent_flow& f : plan) {
        EXPECT_EQ(f.role, agent_role(f.spec.dir));
        const flow_authorization a =
            p.authorize_flow(t0 + 1s, f.spec.kind, f.info_hash, f.spec.port);
        const auto* assignment = std::get_if<flow_assignment>(&a);
        ASSERT_NE(assignment, nullptr);
        EXPECT_EQ(assignment->index, f.spec.index);
        // The two ends play opposite roles in every flow.
        EXPECT_NE(assignment->role, f.role);
        flow_measurement provider_side;
        provider_side.end = flow_end::completed;
        ASSERT_TRUE(p.on_flow_finished(t0 + 2s, 1, f.spec.index, provider_side).ok());
        flow_measurement mine;
        mine.index = f.spec.index;
        mine.role = f.role;
        mine.end = flow_end::completed;
        agent_side.push_back(mine);
    }

    auto collect_bytes = make_collect(agent_side);
    ASSERT_TRUE(collect_bytes.ok());
    const effects done = p.receive(t0 + 20s, 1, *collect_bytes);
    const auto reply = replies_to(done, 1);
    ASSERT_EQ(reply.size(), 1u);
    const auto& cr = std::get<collect_reply>(reply[0]);
    ASSERT_EQ(cr.measurements.size(), plan.size());
    for (std::size_t i = 0; i < plan.size(); ++i) {
        EXPECT_EQ(cr.measurements[i].index, plan[i].spec.index);
        EXPECT_EQ(cr.measurements[i].end, flow_end::completed);
    }
    const auto finished = events_of<test_finished>(done);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].agent_measurements, agent_side);
}

} // namespace
} // namespace glasnode::proto::negotiation
