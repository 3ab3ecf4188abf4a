#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "tests_proto/diff/schedule.hpp"
#include "tests_proto/diff/test_data.hpp"

namespace glasnode::proto::diff {
namespace {

// The schedule as the analysis sees it: each flow with its repetition and concurrency, which
// follow from the schedule's order and groups (match_measurements derives them).
std::vector<measured_flow> annotated(const std::vector<flow_spec>& s) {
    return match_measurements(s, {}, {});
}

schedule_params with_pairs() {
    schedule_params p;
    p.concurrent_repetitions = 1;
    return p;
}

TEST(schedule, default_test_is_sequential_flows_only) {
    seeded_random rng(1);
    const schedule_params p;
    const auto s = make_schedule(p, rng);
    ASSERT_EQ(s.size(), 2u * 4u * p.sequential_repetitions);
    for (const auto& f : annotated(s))
        EXPECT_FALSE(f.concurrent);
    EXPECT_EQ(slots_of(s).size(), s.size());
}

TEST(schedule, joined_directions_pair_each_upload_flow_with_its_download_twin) {
    seeded_random rng(1);
    const schedule_params p;
    auto s = make_schedule(p, rng);
    ASSERT_EQ(s.size(), 2u * 4u * p.sequential_repetitions);
    EXPECT_EQ(join_directions(s, 0), s.size() / 2);
    for (const auto& f : annotated(s))
        EXPECT_FALSE(f.concurrent); // beside the other direction only: still sequential
    const auto slots = slots_of(s);
    EXPECT_EQ(slots.size(), s.size() / 2);
    for (const auto& slot : slots) {
        ASSERT_EQ(slot.size(), 2u);
        EXPECT_NE(slot[0].dir, slot[1].dir);
        EXPECT_EQ(slot[0].port, slot[1].port);
        EXPECT_EQ(slot[0].kind, slot[1].kind);
    }
}

TEST(schedule, joining_from_a_group_leaves_the_earlier_slots_alone) {
    // The automatic mode joins once the first references ran: those keep their slots.
    seeded_random rng(11);
    auto s = make_schedule({}, rng);
    const auto before = slots_of(s);
    const std::uint16_t from = before[2].front().group;
    const std::size_t moved = join_directions(s, from);
    const auto after = slots_of(s);
    ASSERT_GE(after.size(), 2u);
    EXPECT_EQ(after[0], before[0]);
    EXPECT_EQ(after[1], before[1]);
    EXPECT_EQ(moved, 7u); // the other 14 flows, in twins
    EXPECT_EQ(after.size(), 2u + 7u);
    EXPECT_EQ(join_directions(s, from), 0u); // nothing left to join
}

TEST(schedule, one_direction_has_no_twins) {
    seeded_random rng(1);
    schedule_params p;
    p.upload = false;
    auto s = make_schedule(p, rng);
    ASSERT_EQ(s.size(), 4u * p.sequential_repetitions);
    EXPECT_EQ(join_directions(s, 0), 0u);
    EXPECT_EQ(slots_of(s).size(), s.size());
}

TEST(schedule, clean_references_come_before_any_bittorrent_flow) {
    // A classifier that remembers endpoints penalises every flow to a port once it saw
    // BitTorrent there: a control flow of each direction on each port runs before the first BT
    // flow, and the first two slots are controls of both directions (what pairing decides on).
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        seeded_random rng(seed);
        for (const schedule_params& p : {schedule_params{}, with_pairs()}) {
            const auto slots = slots_of(make_schedule(p, rng));
            ASSERT_GE(slots.size(), 4u);
            EXPECT_EQ(slots[0].front().kind, flow_kind::control);
            EXPECT_EQ(slots[1].front().kind, flow_kind::control);
            EXPECT_NE(slots[0].front().dir, slots[1].front().dir);
            // On the neutral port: a port throttle of the BT port in one direction must not
            // decide the pairing.
            EXPECT_EQ(slots[0].front().port, test_port::neutral);
            EXPECT_EQ(slots[1].front().port, test_port::neutral);
            std::set<test_port> bt_seen;
            std::set<std::pair<direction, test_port>> referenced;
            for (const auto& slot : slots) {
                for (const auto& f : slot) {
                    if (f.kind == flow_kind::bt)
                        bt_seen.insert(f.port);
                    else if (!bt_seen.count(f.port))
                        referenced.insert({f.dir, f.port});
                }
            }
            EXPECT_EQ(referenced.size(), 4u) << "seed " << seed;
        }
    }
}

TEST(schedule, pairing_needs_a_symmetric_enough_path) {
    EXPECT_TRUE(paths_allow_pairing(47e6, 48e6));
    EXPECT_TRUE(paths_allow_pairing(25e6, 50e6));   // exactly the ratio
    EXPECT_FALSE(paths_allow_pairing(4.7e6, 47e6)); // 10:1, measured wrong together
    EXPECT_FALSE(paths_allow_pairing(47e6, 4.7e6));
    EXPECT_FALSE(paths_allow_pairing(0.0, 47e6));
    EXPECT_FALSE(paths_allow_pairing(0.0, 0.0));
    for (auto mode :
         {direction_pairing::apart, direction_pairing::together, direction_pairing::automatic})
        EXPECT_EQ(parse_direction_pairing(to_string(mode)), mode);
    EXPECT_EQ(parse_direction_pairing("auto"), direction_pairing::automatic);
    EXPECT_FALSE(parse_direction_pairing("sometimes").has_value());
}

TEST(schedule, a_narrow_uplink_pairs_paced_below_itself) {
    // 4.6/47 Mbit/s (tests/emu asym's first controls): (0.9 x 4.6 - 0.025 x 47) / 1.04.
    const auto pace = paired_upload_pace_bps(4.6e6, 47e6);
    EXPECT_NEAR(static_cast<double>(pace), 2.85e6, 0.01e6);
    // Below the 3.0-3.5 Mbit/s measured harmless, above half the uplink.
    EXPECT_LT(pace, 3'000'000u);
    EXPECT_GT(pace, 2'300'000u);
    // Symmetric enough: paired unpaced, no pace.
    EXPECT_EQ(paired_upload_pace_bps(47e6, 48e6), 0u);
    EXPECT_EQ(paired_upload_pace_bps(25e6, 50e6), 0u);
    // A pace below half the uplink would hide too much of the upload: apart.
    EXPECT_EQ(paired_upload_pace_bps(2e6, 100e6), 0u);   // (1.8 - 2.5) < 0
    EXPECT_EQ(paired_upload_pace_bps(50e6, 1000e6), 0u); // 19 Mbit/s, 0.38 of the uplink
    // A narrow download: the provider's seeds cannot be paced per direction, apart.
    EXPECT_EQ(paired_upload_pace_bps(47e6, 4.6e6), 0u);
    EXPECT_EQ(paired_upload_pace_bps(0.0, 47e6), 0u);
    EXPECT_EQ(paired_upload_pace_bps(4.6e6, 0.0), 0u);
}

TEST(schedule, full_test_covers_every_direction_port_and_kind) {
    seeded_random rng(1);
    schedule_params p;
    p.concurrent_repetitions = 1;
    const auto s = make_schedule(p, rng);
    // Per direction and repetition: 4 sequential flows; per direction: 3 concurrent pairs.
    const std::size_t expected = 2 * (4 * p.sequential_repetitions + 6 * p.concurrent_repetitions);
    ASSERT_EQ(s.size(), expected);
    std::set<std::uint16_t> indices;
    std::map<std::tuple<direction, test_port, flow_kind, bool>, int> count;
    for (const auto& a : annotated(s)) {
        const flow_spec& f = a.spec;
        EXPECT_TRUE(indices.insert(f.index).second) << "duplicate index " << f.index;
        EXPECT_EQ(f.duration_ms, static_cast<std::uint32_t>(p.flow_duration.count()));
        ++count[{f.dir, f.port, f.kind, a.concurrent}];
    }
    for (direction d : {direction::upload, direction::download}) {
        for (test_port port : {test_port::bt, test_port::neutral}) {
            EXPECT_EQ((count[{d, port, flow_kind::bt, false}]), 2);
            EXPECT_EQ((count[{d, port, flow_kind::control, false}]), 2);
            EXPECT_EQ((count[{d, port, flow_kind::bt, true}]), 1);
        }
        // control runs in its content pair on each port, plus the port pair on both ports.
        EXPECT_EQ((count[{d, test_port::bt, flow_kind::control, true}]), 2);
        EXPECT_EQ((count[{d, test_port::neutral, flow_kind::control, true}]), 2);
    }
}

TEST(schedule, groups_are_single_flows_or_matched_pairs) {
    seeded_random rng(2);
    const auto s = make_schedule(with_pairs(), rng);
    for (const auto& slot : slots_of(s)) {
        ASSERT_TRUE(slot.size() == 1 || slot.size() == 2);
        if (slot.size() == 1)
            continue;
        EXPECT_EQ(slot[0].group, slot[1].group);
        EXPECT_EQ(slot[0].dir, slot[1].dir);
        const bool content_pair = slot[0].port == slot[1].port && slot[0].kind != slot[1].kind;
        const bool port_pair = slot[0].port != slot[1].port && slot[0].kind == flow_kind::control &&
                               slot[1].kind == flow_kind::control;
        EXPECT_TRUE(content_pair || port_pair);
    }
}

TEST(schedule, joined_directions_leave_concurrent_pairs_to_their_direction) {
    seeded_random rng(2);
    auto s = make_schedule(with_pairs(), rng);
    join_directions(s, 0);
    for (const auto& slot : slots_of(s)) {
        ASSERT_EQ(slot.size(), 2u);
        if (slot[0].dir != slot[1].dir) { // sequential twins
            EXPECT_EQ(slot[0].port, slot[1].port);
            EXPECT_EQ(slot[0].kind, slot[1].kind);
        } else { // a pair of one direction
            EXPECT_TRUE(slot[0].port != slot[1].port || slot[0].kind != slot[1].kind);
        }
    }
    EXPECT_EQ(slots_of(s).size(), 4u * 2u + 2u * 3u);
}

TEST(schedule, bt_and_control_alternate_within_each_sequential_pair) {
    seeded_random rng(3);
    const auto s = make_schedule(with_pairs(), rng);
    // Within a repetition, the sequential flows of one (direction, port) are one BT and one
    // control, in either order.
    std::map<std::tuple<std::uint32_t, direction, test_port>, std::vector<flow_kind>> seen;
    for (const auto& f : annotated(s)) {
        if (!f.concurrent)
            seen[{f.repetition, f.spec.dir, f.spec.port}].push_back(f.spec.kind);
    }
    for (const auto& [key, kinds] : seen) {
        ASSERT_EQ(kinds.size(), 2u);
        EXPECT_NE(kinds[0], kinds[1]);
    }
}

TEST(schedule, order_is_random_but_fixed_by_the_seed) {
    auto order = [](std::uint64_t seed) {
        seeded_random rng(seed);
        std::vector<std::tuple<int, int, int, int>> v;
        for (const auto& f : make_schedule({}, rng))
            v.emplace_back(static_cast<int>(f.dir), static_cast<int>(f.port),
                           static_cast<int>(f.kind), f.group);
        return v;
    };
    EXPECT_EQ(order(7), order(7));
    int differing = 0;
    for (std::uint64_t seed = 8; seed < 18; ++seed)
        differing += order(seed) != order(7) ? 1 : 0;
    EXPECT_GE(differing, 9) << "the order barely depends on the seed";
}

TEST(schedule, transfer_time_counts_concurrent_groups_once) {
    seeded_random rng(4);
    schedule_params p = with_pairs();
    p.flow_duration = std::chrono::milliseconds(2000);
    const auto s = make_schedule(p, rng);
    const std::size_t slots = slots_of(s).size();
    EXPECT_EQ(slots, 2 * (4 * 2 + 3 * 1));
    EXPECT_EQ(transfer_time(s), std::chrono::milliseconds(2000) * static_cast<int>(slots));
}

TEST(schedule, confirmation_reruns_only_the_named_comparisons) {
    seeded_random rng(5);
    const comparison_key which[] = {{direction::download, test_port::bt},
                                    {direction::upload, test_port::neutral}};
    const schedule_params p;
    const auto s = make_confirmation(which, p, rng, 100, 50);
    std::map<std::tuple<direction, test_port, flow_kind>, int> count;
    std::set<std::uint32_t> repetitions;
    for (const auto& a : annotated(s)) {
        const flow_spec& f = a.spec;
        EXPECT_GE(f.index, 100);
        EXPECT_GE(f.group, 50);
        EXPECT_FALSE(a.concurrent);
        repetitions.insert(a.repetition);
        ++count[{f.dir, f.port, f.kind}];
    }
    EXPECT_EQ(repetitions, (std::set<std::uint32_t>{0, 1}));
    // As many repetitions as the test itself: download/bt has BT and control, and control on
    // the neutral port for its port comparison; upload/neutral has BT and control.
    EXPECT_EQ((count[{direction::download, test_port::bt, flow_kind::bt}]), 2);
    EXPECT_EQ((count[{direction::download, test_port::bt, flow_kind::control}]), 2);
    EXPECT_EQ((count[{direction::download, test_port::neutral, flow_kind::control}]), 2);
    EXPECT_EQ((count[{direction::download, test_port::neutral, flow_kind::bt}]), 0);
    EXPECT_EQ((count[{direction::upload, test_port::neutral, flow_kind::bt}]), 2);
    EXPECT_EQ((count[{direction::upload, test_port::neutral, flow_kind::control}]), 2);
    EXPECT_EQ((count[{direction::upload, test_port::bt, flow_kind::control}]), 0);
    EXPECT_EQ(s.size(), 10u);
    EXPECT_EQ(slots_of(s).size(), 10u);
    // Together, the only twins are the control flows on the neutral port, which both
    // comparisons rerun.
    auto together = make_confirmation(which, p, rng, 100, 50);
    join_directions(together, 0);
    EXPECT_EQ(slots_of(together).size(), 8u);
}

TEST(schedule, every_confirmation_flow_serves_a_comparison_it_was_built_for) {
    // The agent skips a rerun slot none of whose flows serves a comparison still confirming:
    // `serves` must agree with what make_confirmation builds, for every subset of keys.
    const comparison_key all[] = {{direction::upload, test_port::bt},
                                  {direction::upload, test_port::neutral},
                                  {direction::download, test_port::bt},
                                  {direction::download, test_port::neutral}};
    seeded_random rng(9);
    for (unsigned mask = 1; mask < 16; ++mask) {
        std::vector<comparison_key> which;
        for (unsigned i = 0; i < 4; ++i)
            if (mask & (1u << i))
                which.push_back(all[i]);
        for (const schedule_params& p : {schedule_params{}, with_pairs()}) {
            for (const flow_spec& f : make_confirmation(which, p, rng, 0, 0))
                EXPECT_TRUE(std::any_of(which.begin(), which.end(),
                                        [&](const comparison_key& k) { return serves(f, k); }))
                    << "mask " << mask;
        }
    }
    // Control on the neutral port is the BT port's reference; BT on the neutral port is not.
    const flow_spec neutral_control{
        .dir = direction::upload, .port = test_port::neutral, .kind = flow_kind::control};
    flow_spec neutral_bt = neutral_control;
    neutral_bt.kind = flow_kind::bt;
    EXPECT_TRUE(serves(neutral_control, {direction::upload, test_port::bt}));
    EXPECT_FALSE(serves(neutral_bt, {direction::upload, test_port::bt}));
    EXPECT_FALSE(serves(neutral_control, {direction::download, test_port::bt}));
}

TEST(schedule, a_port_verdicts_confirmation_holds_only_control_flows) {
    seeded_random rng(8);
    const comparison_key which[] = {{direction::download, test_port::bt},
                                    {direction::upload, test_port::bt}};
    const comparison_key port_only[] = {{direction::download, test_port::bt}};
    const auto s = make_confirmation(which, {}, rng, 0, 0, port_only);
    std::map<std::tuple<direction, test_port, flow_kind>, int> count;
    for (const auto& f : s)
        ++count[{f.dir, f.port, f.kind}];
    // download/bt: control on both ports, twice; upload/bt as before (BT, control, and the
    // neutral port's control).
    EXPECT_EQ((count[{direction::download, test_port::bt, flow_kind::bt}]), 0);
    EXPECT_EQ((count[{direction::download, test_port::bt, flow_kind::control}]), 2);
    EXPECT_EQ((count[{direction::download, test_port::neutral, flow_kind::control}]), 2);
    EXPECT_EQ((count[{direction::upload, test_port::bt, flow_kind::bt}]), 2);
    EXPECT_EQ((count[{direction::upload, test_port::bt, flow_kind::control}]), 2);
    EXPECT_EQ((count[{direction::upload, test_port::neutral, flow_kind::control}]), 2);
    EXPECT_EQ(s.size(), 10u);
    for (const auto& f : s)
        EXPECT_TRUE(std::any_of(std::begin(which), std::end(which),
                                [&](const comparison_key& k) { return serves(f, k); }));
    // With pairs: the port pair only, no BT/control pair.
    const auto paired = make_confirmation(port_only, with_pairs(), rng, 0, 0, port_only);
    for (const auto& f : paired)
        EXPECT_EQ(f.kind, flow_kind::control);
    // A neutral-port key is never controls-only: its comparison is BT against control.
    const comparison_key neutral[] = {{direction::upload, test_port::neutral}};
    std::size_t bt = 0;
    for (const auto& f : make_confirmation(neutral, {}, rng, 0, 0, neutral))
        bt += f.kind == flow_kind::bt ? 1 : 0;
    EXPECT_EQ(bt, 2u);
}

TEST(schedule, confirmation_shares_the_neutral_reference_and_keeps_pairs) {
    seeded_random rng(6);
    const comparison_key both[] = {{direction::upload, test_port::bt},
                                   {direction::upload, test_port::neutral}};
    // The neutral port is rerun anyway: its control flows serve the BT port's port comparison.
    const auto s = make_confirmation(both, {}, rng, 0, 0);
    EXPECT_EQ(s.size(), 8u);
    // With pairs in the schedule, the rerun has them too.
    const comparison_key bt_only[] = {{direction::download, test_port::bt}};
    const auto paired = make_confirmation(bt_only, with_pairs(), rng, 0, 0);
    std::size_t concurrent = 0;
    for (const auto& f : annotated(paired))
        concurrent += f.concurrent ? 1 : 0;
    EXPECT_EQ(concurrent, 4u); // the BT/control pair and the port pair
    EXPECT_EQ(paired.size(), 10u);
}

} // namespace
} // namespace glasnode::proto::diff

namespace glasnode::proto::diff {
namespace {

TEST(schedule, only_kind_keeps_one_payload_and_unpairs_the_rest) {
    for (flow_kind k : {flow_kind::bt, flow_kind::control}) {
        seeded_random rng(6);
        schedule_params p;
        p.only_kind = k;
        const auto s = make_schedule(p, rng);
        ASSERT_FALSE(s.empty());
        std::map<std::pair<std::uint16_t, direction>, int> group_size;
        for (const auto& f : s)
            ++group_size[{f.group, f.dir}];
        for (const auto& f : annotated(s)) {
            EXPECT_EQ(f.spec.kind, k);
            EXPECT_EQ(f.concurrent, (group_size[{f.spec.group, f.spec.dir}] > 1));
        }
    }
}

} // namespace
} // namespace glasnode::proto::diff

namespace glasnode::proto::diff {
namespace {

TEST(schedule, a_flows_byte_bound_covers_its_payload_at_the_cap) {
    // 2.5 s at 40 Mbit/s: 12.5 MB of payload, plus the pacing's overshoot and the handshake.
    const std::uint64_t bound = flow_byte_bound(2500, 40'000'000);
    EXPECT_GT(bound, 12'500'000u * 110 / 100);
    EXPECT_LT(bound, 12'500'000u * 116 / 100 + 65'536);
    EXPECT_EQ(flow_byte_bound(2500, 0), 65'536u);
}

TEST(schedule, confirmation_fits_the_bytes_left_in_order_of_priority) {
    const comparison_key all[] = {{direction::download, test_port::bt},
                                  {direction::download, test_port::neutral},
                                  {direction::upload, test_port::bt},
                                  {direction::upload, test_port::neutral}};
    schedule_params p; // 2 x 2.5 s
    p.max_rate_bps = 40'000'000;
    p.max_test_bytes = 250'000'000;
    const std::uint64_t flow = flow_byte_bound(2500, p.max_rate_bps);
    // Nothing used yet: all four comparisons (16 flows) fit in 250 MB.
    auto f = fit_confirmation(all, p, 0);
    EXPECT_EQ(f.rerun.size(), 4u);
    EXPECT_TRUE(f.skipped.empty());
    // Room for 6 flows: download/bt needs 6 (BT, control, and the neutral control for its port
    // comparison), download/neutral then needs 4 more and does not fit; neither does
    // upload/bt (6), nor upload/neutral (4).
    f = fit_confirmation(all, p, p.max_test_bytes - 6 * flow - 1000);
    ASSERT_EQ(f.rerun.size(), 1u);
    EXPECT_EQ(f.rerun[0].dir, direction::download);
    EXPECT_EQ(f.rerun[0].port, test_port::bt);
    EXPECT_EQ(f.skipped.size(), 3u);
    // Room for 4 flows: download/bt (6) does not fit, download/neutral (4) does, and then no
    // other comparison fits beside it.
    f = fit_confirmation(all, p, p.max_test_bytes - 4 * flow - 1000);
    ASSERT_EQ(f.rerun.size(), 1u);
    EXPECT_EQ(f.rerun[0].port, test_port::neutral);
    EXPECT_EQ(f.rerun[0].dir, direction::download);
    // The budget spent already: nothing is rerun.
    f = fit_confirmation(all, p, p.max_test_bytes + 1);
    EXPECT_TRUE(f.rerun.empty());
    EXPECT_EQ(f.skipped.size(), 4u);
    // No budget: everything.
    schedule_params unbounded = p;
    unbounded.max_test_bytes = 0;
    EXPECT_EQ(fit_confirmation(all, unbounded, p.max_test_bytes + 1).rerun.size(), 4u);
}

TEST(schedule, confirmation_expects_what_the_first_run_moved) {
    const comparison_key all[] = {{direction::download, test_port::bt},
                                  {direction::download, test_port::neutral},
                                  {direction::upload, test_port::bt},
                                  {direction::upload, test_port::neutral}};
    schedule_params p;
    p.max_rate_bps = 40'000'000;
    p.max_test_bytes = 250'000'000;
    // A throttled path: BT flows moved 0.7 MB, control flows 12 MB (at the cap), 200 MB spent.
    std::vector<shape_bytes> moved;
    for (direction d : {direction::upload, direction::download})
        for (test_port port : {test_port::bt, test_port::neutral}) {
            moved.push_back({d, port, flow_kind::bt, 700'000});
            moved.push_back({d, port, flow_kind::control, 12'000'000});
        }
    // 50 MB left. A rerun BT flow is expected at 1.05 MB, a control flow at the cap's bound
    // (14.4 MB, below 1.5 x 12 MB). download/bt needs 6 flows (60 MB: its port comparison's
    // neutral control flows too) and does not fit; download/neutral needs 4 (31 MB) and does;
    // after it, neither upload comparison fits.
    auto f = fit_confirmation(all, p, 200'000'000, moved);
    ASSERT_EQ(f.rerun.size(), 1u);
    EXPECT_EQ(f.rerun[0].dir, direction::download);
    EXPECT_EQ(f.rerun[0].port, test_port::neutral);
    EXPECT_EQ(f.skipped.size(), 3u);
    // With 120 MB spent, all four fit: 16 flows, 124 MB of the 130 MB left.
    f = fit_confirmation(all, p, 120'000'000, moved);
    EXPECT_EQ(f.rerun.size(), 4u);
    // No cap: the figures alone decide (1.5 x what the first run moved).
    schedule_params uncapped = p;
    uncapped.max_rate_bps = 0;
    f = fit_confirmation(all, uncapped, 0, moved);
    EXPECT_EQ(f.rerun.size(), 4u); // 8 x 1.05 + 8 x 18 = 152 MB of 250
    f = fit_confirmation(all, uncapped, 200'000'000, moved);
    EXPECT_LT(f.rerun.size(), 4u);
}

TEST(schedule, steady_fraction_counts_the_intervals_near_the_peak) {
    std::vector<std::uint64_t> flat(100, 1000);
    EXPECT_EQ(steady_fraction(flat), 1.0);
    // Start-up (the first tenth) and the partial last interval do not count.
    for (std::size_t k = 0; k < 10; ++k)
        flat[k] = 10;
    flat.back() = 1;
    EXPECT_EQ(steady_fraction(flat), 1.0);
    // On/off: 10 intervals at full rate, 10 at a third, from interval 10 to 98.
    std::vector<std::uint64_t> bursty(100, 900);
    for (std::size_t k = 0; k < bursty.size(); ++k)
        if ((k / 10) % 2 == 1)
            bursty[k] = 300;
    const auto f = steady_fraction(bursty);
    ASSERT_TRUE(f);
    EXPECT_NEAR(*f, 40.0 / 89, 1e-9); // intervals 20-29, 40-49, 60-69 and 80-89 of 10-98
    EXPECT_LT(*f, steady_min_fraction);
}

TEST(schedule, steady_fraction_cannot_tell_from_a_few_intervals) {
    EXPECT_FALSE(steady_fraction(std::vector<std::uint64_t>(3, 5'000'000))); // 120 ms RTT
    EXPECT_FALSE(steady_fraction(std::vector<std::uint64_t>{}));
    EXPECT_FALSE(steady_fraction(std::vector<std::uint64_t>(20, 0))); // nothing arrived
}

TEST(schedule, a_rerun_that_would_pass_the_time_budget_runs_shorter_flows) {
    using std::chrono::milliseconds;
    schedule_params p; // 2.5 s flows, 60 s
    // A rerun that fits keeps the first run's flows.
    EXPECT_EQ(rerun_flow_duration(p, milliseconds{24'000}, milliseconds{100}, 4), p.flow_duration);
    // Apart under cross traffic: 42 s gone, 8 slots at 0.1 s overhead each, 1 s kept for the
    // collect: 2.025 s flows.
    EXPECT_EQ(rerun_flow_duration(p, milliseconds{42'000}, milliseconds{100}, 8),
              milliseconds{2025});
    // Later than that, never under 2 s: the budget is passed rather than the rerun weakened.
    EXPECT_EQ(rerun_flow_duration(p, milliseconds{55'000}, milliseconds{100}, 8),
              min_rerun_flow_duration);
    EXPECT_EQ(rerun_flow_duration(p, milliseconds{70'000}, milliseconds{100}, 8),
              min_rerun_flow_duration);
    // Flows already shorter than the floor stay as they are.
    p.flow_duration = milliseconds{1000};
    EXPECT_EQ(rerun_flow_duration(p, milliseconds{70'000}, milliseconds{100}, 8),
              milliseconds{1000});
    // No budget.
    p.flow_duration = milliseconds{2500};
    p.time_budget = milliseconds{0};
    EXPECT_EQ(rerun_flow_duration(p, milliseconds{70'000}, milliseconds{100}, 8), p.flow_duration);
}

} // namespace
} // namespace glasnode::proto::diff
