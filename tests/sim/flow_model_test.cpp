#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"
#include "sim/flow_model.hpp"
#include "tests_proto/diff/sampling.hpp"

namespace glasnode::sim {
namespace {

using namespace std::chrono_literals;
using proto::direction;
using proto::flow_end;
using proto::flow_kind;
using proto::flow_role;
using proto::test_port;
namespace nego = proto::negotiation;

constexpr std::uint16_t bt_port = 6881;
constexpr std::uint16_t neutral_port = 9775;

nego::flow_to_run flow(std::uint16_t index, direction dir, test_port port, flow_kind kind,
                       std::uint32_t duration_ms = 2500) {
    nego::flow_to_run f;
    f.spec = proto::flow_spec{index, dir, port, kind, index, duration_ms};
    f.role = proto::agent_role(dir);
    f.port = port == test_port::bt ? bt_port : neutral_port;
    return f;
}

path_model clean_path() {
    path_model p;
    p.download_bps = p.upload_bps = 40e6;
    p.rtt = 20ms;
    return p;
}

modelled_flow one(const nego::flow_to_run& f, const path_model& path, const path_policy& policy,
                  std::uint64_t seed = 1) {
    splitmix_random noise(seed);
    auto out = model_slot(std::span(&f, 1), path, policy, flow_timeouts{}, noise);
    EXPECT_EQ(out.size(), 1u);
    return out.front();
}

const flow_measurement& receiver(const modelled_flow& m, const nego::flow_to_run& f) {
    return f.role == flow_role::leech ? m.agent : m.provider;
}
const flow_measurement& sender(const modelled_flow& m, const nego::flow_to_run& f) {
    return f.role == flow_role::leech ? m.provider : m.agent;
}

double mbps(const flow_measurement& rx) {
    const auto bytes = std::accumulate(rx.samples.begin(), rx.samples.end(), std::uint64_t{0});
    return static_cast<double>(bytes) * 8.0 / static_cast<double>(rx.duration_us);
}

double sample_mbps(const flow_measurement& rx, std::size_t k) {
    return static_cast<double>(rx.samples.at(k)) * 8.0 / static_cast<double>(rx.sample_interval_us);
}

TEST(sim_flow_model, a_clean_download_fills_its_window_as_the_flow_engine_measures_it) {
    const auto f = flow(3, direction::download, test_port::bt, flow_kind::bt);
    const modelled_flow m = one(f, clean_path(), {});
    // The agent leeches a download: it has the samples, by the flow engine's sampling rules.
    const auto plan = proto::diff::plan_samples(2500ms, 0us, 20ms);
    EXPECT_EQ(m.agent.role, flow_role::leech);
    EXPECT_EQ(m.provider.role, flow_role::seed);
    EXPECT_EQ(m.agent.index, 3u);
    EXPECT_EQ(m.provider.index, 3u);
    ASSERT_EQ(m.agent.samples.size(), plan.count);
    EXPECT_EQ(m.agent.sample_interval_us, static_cast<std::uint64_t>(plan.interval.count()));
    EXPECT_EQ(m.agent.duration_us, 2'500'000u);
    EXPECT_TRUE(m.provider.samples.empty());
    EXPECT_EQ(m.provider.duration_us, 2'500'000u);
    EXPECT_EQ(m.agent.end, flow_end::completed);
    EXPECT_EQ(m.provider.end, flow_end::completed);
    EXPECT_EQ(m.agent.connect_time_us, 20'000u);
    EXPECT_EQ(m.agent.min_rtt_us, 20'000u);
    EXPECT_EQ(m.agent.resets_received + m.agent.resets_sent + m.provider.resets_received +
                  m.provider.resets_sent,
              0u);
    // What the seed sent is what the leech received; the window holds most of it.
    EXPECT_EQ(m.agent.payload_bytes, m.provider.payload_bytes);
    EXPECT_EQ(m.agent.bytes_received, m.provider.bytes_sent);
    EXPECT_GT(m.provider.bytes_sent, m.provider.payload_bytes);
    const auto in_window =
        std::accumulate(m.agent.samples.begin(), m.agent.samples.end(), std::uint64_t{0});
    EXPECT_LE(in_window, m.agent.payload_bytes);
    // Close to the path's rate (one RTT without data and a short ramp), never above it.
    EXPECT_GT(mbps(m.agent), 38.0);
    EXPECT_LE(mbps(m.agent), 40.0);
    for (std::size_t k = 0; k < m.agent.samples.size(); ++k)
        EXPECT_LE(sample_mbps(m.agent, k), 40.0 * 1.0001) << "sample " << k;
    // The timeline of the header: handshake read at 1.5 RTT, ends a seed half an RTT early.
    ASSERT_TRUE(m.handshake_at.has_value());
    EXPECT_EQ(*m.handshake_at, 30ms);
    EXPECT_EQ(m.agent_done, 2500ms + 60ms);
    EXPECT_EQ(m.provider_done, 2500ms + 50ms);
}

TEST(sim_flow_model, an_upload_is_measured_by_the_provider) {
    const auto f = flow(0, direction::upload, test_port::neutral, flow_kind::control);
    const modelled_flow m = one(f, clean_path(), {});
    EXPECT_EQ(m.agent.role, flow_role::seed);
    EXPECT_EQ(m.provider.role, flow_role::leech);
    EXPECT_TRUE(m.agent.samples.empty());
    EXPECT_FALSE(m.provider.samples.empty());
    EXPECT_EQ(m.agent.connect_time_us, 20'000u);
    EXPECT_EQ(m.provider.connect_time_us, 0u) << "only the connecting end times the connect";
    EXPECT_EQ(m.agent_done, 2500ms + 50ms);
    EXPECT_EQ(m.provider_done, 2500ms + 60ms);
}

TEST(sim_flow_model, slow_start_doubles_per_rtt_up_to_the_bottleneck) {
    // A long, fast path: 200 ms RTT makes 2 s intervals, and the window needs about 7.5
    // doublings (1.5 s) to fill 100 Mbit/s from 10 segments.
    path_model p = clean_path();
    p.download_bps = 100e6;
    p.rtt = 200ms;
    const auto f = flow(0, direction::download, test_port::neutral, flow_kind::control, 30'000);
    const modelled_flow m = one(f, p, {});
    ASSERT_EQ(m.agent.sample_interval_us, 2'000'000u);
    ASSERT_GE(m.agent.samples.size(), 10u);
    // First interval: one RTT without data, then 10 x 1448 x (1 + 2 + ... + 128) bytes by the end
    // of the 8th RTT of data (1.8 s), then the rest of the interval at the full rate.
    const double ramp = 10.0 * 1448 * 255;
    const double full_tail = 100e6 / 8 * 0.2;
    EXPECT_NEAR(static_cast<double>(m.agent.samples[0]), ramp + full_tail, 0.02 * ramp);
    EXPECT_NEAR(sample_mbps(m.agent, 5), 100.0, 0.01);
}

TEST(sim_flow_model, content_throttle_caps_bittorrent_on_every_port_and_spares_control) {
    path_policy policy;
    policy.action = policy_action::throttle;
    policy.match = policy_match::content;
    policy.fraction = 0.1;
    const auto bt_on_neutral = flow(0, direction::download, test_port::neutral, flow_kind::bt);
    const auto control_on_bt = flow(1, direction::download, test_port::bt, flow_kind::control);
    const double throttled =
        mbps(receiver(one(bt_on_neutral, clean_path(), policy), bt_on_neutral));
    const double spared = mbps(receiver(one(control_on_bt, clean_path(), policy), control_on_bt));
    EXPECT_NEAR(throttled, 4.0, 0.1);
    EXPECT_GT(spared, 38.0);
}

TEST(sim_flow_model, the_pacing_cap_holds_every_flow_below_it_in_both_directions) {
    for (direction d : {direction::download, direction::upload}) {
        const auto f = flow(0, d, test_port::neutral, flow_kind::control);
        splitmix_random noise(3);
        const auto out = model_slot(std::span(&f, 1), clean_path(), path_policy{}, flow_timeouts{},
                                    noise, 25'000'000);
        ASSERT_EQ(out.size(), 1u);
        const double rate = mbps(receiver(out.front(), f));
        EXPECT_LE(rate, 25.0 + 1e-9) << to_string(d);
        EXPECT_GT(rate, 23.0) << to_string(d); // slow start takes the first few intervals
        // A cap above the path changes nothing.
        splitmix_random again(3);
        const auto fast = model_slot(std::span(&f, 1), clean_path(), path_policy{}, flow_timeouts{},
                                     again, 100'000'000);
        EXPECT_GT(mbps(receiver(fast.front(), f)), 38.0) << to_string(d);
    }
}

TEST(sim_flow_model, port_throttle_caps_any_payload_to_the_port_only) {
    path_policy policy;
    policy.action = policy_action::throttle;
    policy.match = policy_match::port;
    policy.port = bt_port;
    policy.fraction = 0.25;
    const auto control_on_bt = flow(0, direction::upload, test_port::bt, flow_kind::control);
    const auto bt_on_neutral = flow(1, direction::upload, test_port::neutral, flow_kind::bt);
    EXPECT_NEAR(mbps(receiver(one(control_on_bt, clean_path(), policy), control_on_bt)), 10.0, 0.2);
    EXPECT_GT(mbps(receiver(one(bt_on_neutral, clean_path(), policy), bt_on_neutral)), 38.0);
}

TEST(sim_flow_model, a_policy_covers_only_its_directions) {
    path_policy policy;
    policy.action = policy_action::throttle;
    policy.fraction = 0.1;
    policy.upload = false;
    const auto up = flow(0, direction::upload, test_port::bt, flow_kind::bt);
    const auto down = flow(1, direction::download, test_port::bt, flow_kind::bt);
    EXPECT_GT(mbps(receiver(one(up, clean_path(), policy), up)), 38.0);
    EXPECT_NEAR(mbps(receiver(one(down, clean_path(), policy), down)), 4.0, 0.1);
}

TEST(sim_flow_model, delayed_throttle_runs_at_full_rate_then_cuts) {
    path_policy policy;
    policy.action = policy_action::throttle;
    policy.fraction = 0.1;
    policy.after_bytes = 2'000'000;
    const auto f = flow(0, direction::download, test_port::bt, flow_kind::bt);
    const flow_measurement rx = receiver(one(f, clean_path(), policy), f);
    ASSERT_EQ(rx.samples.size(), 13u); // 200 ms intervals
    // 2 MB at 40 Mbit/s is 0.4 s: the second interval is still at full rate, the later ones are
    // cut (the 13th is only half an interval long: the window ends within it).
    EXPECT_NEAR(sample_mbps(rx, 1), 40.0, 0.1);
    EXPECT_NEAR(sample_mbps(rx, 11), 4.0, 0.05);
    EXPECT_NEAR(sample_mbps(rx, 12), 2.0, 0.05);
    // The cut comes at the byte count, in the third interval: after it, at most 0.2 s at
    // 4 Mbit/s (100 kB) arrive in that interval.
    const std::uint64_t two = rx.samples[0] + rx.samples[1];
    EXPECT_LT(two, 2'000'000u);
    EXPECT_GT(two + rx.samples[2], 2'000'000u);
    EXPECT_LE(two + rx.samples[2], 2'100'000u);
}

TEST(sim_flow_model, block_drop_times_out_the_connect) {
    path_policy policy;
    policy.action = policy_action::block;
    policy.match = policy_match::port;
    policy.block = block_mode::drop;
    const auto f = flow(0, direction::download, test_port::bt, flow_kind::control);
    const modelled_flow m = one(f, clean_path(), policy);
    EXPECT_EQ(m.agent.end, flow_end::connect_timeout);
    EXPECT_EQ(m.agent_done, flow_timeouts{}.connect);
    EXPECT_FALSE(m.handshake_at.has_value()) << "the provider never hears of the flow";
    EXPECT_EQ(m.agent.payload_bytes, 0u);
    // The neutral port still works.
    const auto other = flow(1, direction::download, test_port::neutral, flow_kind::control);
    EXPECT_EQ(one(other, clean_path(), policy).agent.end, flow_end::completed);
}

TEST(sim_flow_model, block_reject_fails_the_connect_after_one_rtt) {
    path_policy policy;
    policy.action = policy_action::block;
    policy.match = policy_match::port;
    policy.block = block_mode::reject;
    const auto f = flow(0, direction::upload, test_port::bt, flow_kind::bt);
    const modelled_flow m = one(f, clean_path(), policy);
    EXPECT_EQ(m.agent.end, flow_end::connect_failed);
    EXPECT_EQ(m.agent_done, 20ms);
    EXPECT_FALSE(m.handshake_at.has_value());
}

TEST(sim_flow_model, block_stall_lets_the_handshake_through_and_nothing_else) {
    path_policy policy;
    policy.action = policy_action::block;
    policy.match = policy_match::content;
    policy.block = block_mode::stall;
    const auto f = flow(0, direction::download, test_port::neutral, flow_kind::bt);
    const modelled_flow m = one(f, clean_path(), policy);
    ASSERT_TRUE(m.handshake_at.has_value());
    EXPECT_EQ(m.agent.end, flow_end::stalled);
    EXPECT_EQ(m.provider.end, flow_end::stalled);
    EXPECT_EQ(m.agent.payload_bytes, 0u);
    EXPECT_EQ(std::accumulate(m.agent.samples.begin(), m.agent.samples.end(), std::uint64_t{0}),
              0u);
    EXPECT_EQ(m.agent_done, 40ms + flow_timeouts{}.stall);
}

TEST(sim_flow_model, forged_reset_reaches_both_ends_after_its_bytes) {
    path_policy policy;
    policy.action = policy_action::reset;
    policy.after_bytes = 100'000;
    const auto f = flow(0, direction::upload, test_port::neutral, flow_kind::bt);
    const modelled_flow m = one(f, clean_path(), policy);
    const flow_measurement& rx = receiver(m, f);
    const flow_measurement& tx = sender(m, f);
    EXPECT_EQ(rx.end, flow_end::reset_received);
    EXPECT_EQ(tx.end, flow_end::reset_received);
    EXPECT_EQ(rx.resets_received, 1u);
    EXPECT_EQ(tx.resets_received, 1u);
    EXPECT_EQ(rx.resets_sent, 0u) << "neither end sent the RST";
    EXPECT_EQ(tx.resets_sent, 0u);
    EXPECT_GE(rx.payload_bytes, 100'000u);
    EXPECT_LT(rx.payload_bytes, 100'010u);
    EXPECT_LT(rx.duration_us, 2'500'000u) << "the window ends at the reset";
    EXPECT_EQ(m.agent_done, m.provider_done);
    EXPECT_LT(m.agent_done, 1s);
    // Control flows pass untouched.
    const auto control = flow(1, direction::upload, test_port::neutral, flow_kind::control);
    EXPECT_EQ(receiver(one(control, clean_path(), policy), control).end, flow_end::completed);
}

TEST(sim_flow_model, concurrent_flows_share_the_bottleneck_max_min_fairly) {
    const std::vector<nego::flow_to_run> pair{
        flow(0, direction::download, test_port::bt, flow_kind::bt),
        flow(1, direction::download, test_port::bt, flow_kind::control)};
    splitmix_random noise(1);
    auto neutral = model_slot(pair, clean_path(), {}, {}, noise);
    EXPECT_NEAR(mbps(neutral[0].agent), 20.0, 0.5);
    EXPECT_NEAR(mbps(neutral[1].agent), 20.0, 0.5);
    // A capped flow leaves its share to the other.
    path_policy policy;
    policy.action = policy_action::throttle;
    policy.fraction = 0.1;
    auto capped = model_slot(pair, clean_path(), policy, {}, noise);
    EXPECT_NEAR(mbps(capped[0].agent), 4.0, 0.1);
    EXPECT_GT(mbps(capped[1].agent), 34.0);
    // Samples stay aligned: the paired rule compares them interval by interval.
    EXPECT_EQ(capped[0].agent.samples.size(), capped[1].agent.samples.size());
    // Flows going the other way do not share this direction's link.
    const std::vector<nego::flow_to_run> both_ways{
        flow(0, direction::download, test_port::bt, flow_kind::control),
        flow(1, direction::upload, test_port::bt, flow_kind::control)};
    auto apart = model_slot(both_ways, clean_path(), {}, {}, noise);
    EXPECT_GT(mbps(apart[0].agent), 38.0);
    EXPECT_GT(mbps(apart[1].provider), 38.0);
}

TEST(sim_flow_model, noise_is_seeded) {
    path_model p = clean_path();
    p.noise = 0.1;
    const auto f = flow(0, direction::download, test_port::bt, flow_kind::bt);
    const auto a = one(f, p, {}, 5).agent.samples;
    EXPECT_EQ(one(f, p, {}, 5).agent.samples, a);
    EXPECT_NE(one(f, p, {}, 6).agent.samples, a);
    // With noise the intervals differ from one another; without, the full-rate ones do not.
    EXPECT_NE(a[5], a[6]);
    const auto quiet = one(f, clean_path(), {}, 5).agent.samples;
    EXPECT_EQ(quiet[5], quiet[6]);
    EXPECT_EQ(one(f, clean_path(), {}, 6).agent.samples, quiet) << "no noise, no draws";
}

TEST(sim_flow_model, a_refused_flow_ends_refused_at_the_agent) {
    const auto f = flow(2, direction::download, test_port::bt, flow_kind::bt);
    const flow_measurement m = refused_at_handshake(f, clean_path());
    EXPECT_EQ(m.index, 2u);
    EXPECT_EQ(m.role, flow_role::leech);
    EXPECT_EQ(m.end, flow_end::refused);
    EXPECT_EQ(m.payload_bytes, 0u);
}

} // namespace
} // namespace glasnode::sim
