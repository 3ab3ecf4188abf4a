// The agent core driven by a scripted provider: every reply is a message the test builds, every
// flow report a measurement it makes up, time a value it chooses. No socket, no coroutine.

#include <algorithm>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"
#include "support.hpp"
#include "tests_proto/negotiation/agent.hpp"

namespace glasnode::proto::negotiation {
namespace {

using namespace std::chrono_literals;
using namespace testing;

template <class E>
std::vector<E> all_of(const agent_effects& out) {
    std::vector<E> r;
    for (const auto& e : out)
        if (const auto* x = std::get_if<E>(&e))
            r.push_back(*x);
    return r;
}

template <class M>
std::vector<M> sent(const agent_effects& out) {
    std::vector<M> r;
    for (const auto& s : all_of<agent_send>(out)) {
        auto m = wire::decode_message<M>(s.message);
        if (m)
            r.push_back(std::move(*m));
    }
    return r;
}

const test_failed* failure(const agent_effects& out) {
    for (const auto& e : out)
        if (const auto* f = std::get_if<test_failed>(&e))
            return f;
    return nullptr;
}

agent_options short_options() {
    agent_options o;
    o.schedule.flow_duration = 1000ms;
    o.schedule.pairing = diff::direction_pairing::apart; // one flow per slot, unless a test asks
    o.confirm = false;
    return o;
}

grant a_grant(std::uint8_t fill = 9) {
    grant g;
    g.token.fill(fill);
    g.valid_for_ms = 120'000;
    g.bt_port = 6881;
    g.neutral_port = 9775;
    return g;
}

bytes error_reply(wire::wire_error code, std::string reason) {
    wire::error_message e;
    e.code = static_cast<std::uint16_t>(code);
    e.reason = std::move(reason);
    return wire::encode_message(e);
}

// A receiver-side series at `mbps` with small wobble, and the sender's plain record; each end
// counts the second's bytes it received or sent.
flow_measurement measured(std::uint16_t index, flow_role role, double mbps) {
    flow_measurement m;
    m.index = index;
    m.role = role;
    m.end = flow_end::completed;
    const auto bytes = static_cast<std::uint64_t>(mbps * 1e6 / 8);
    if (role == flow_role::leech) {
        m.sample_interval_us = 10'000;
        m.duration_us = 1'000'000;
        const double per_interval = mbps * 1e6 / 8 * 0.01;
        for (int k = 0; k < 100; ++k)
            m.samples.push_back(static_cast<std::uint64_t>(per_interval * (1.0 + 0.01 * (k % 5))));
        m.bytes_received = bytes;
    } else {
        m.bytes_sent = bytes;
        m.payload_bytes = bytes; // a seed keeps no window: what it sent in the flow's second
    }
    return m;
}

// The rate a path gives one flow: BT payload cut to `bt_share` of the line rate.
double path_mbps(const flow_spec& f, double bt_share) {
    return f.kind == flow_kind::bt ? 40.0 * bt_share : 40.0;
}

// Plays the provider's part of one granted run: reports every flow the core starts, slot by
// slot, and answers its collect. Returns the effects of the collect_reply.
struct scripted_run {
    std::vector<flow_spec> schedule;
    std::size_t slots = 0;
    agent_effects last;
};

// Each flow's rate on the scripted path, Mbit/s.
using path_model = std::function<double(const flow_spec&)>;

scripted_run play_run(agent& a, time_point& now, const agent_effects& granted,
                      const path_model& path, std::vector<flow_spec> schedule) {
    scripted_run run;
    run.schedule = std::move(schedule);
    agent_effects out = granted;
    std::vector<flow_measurement> provider_side;
    for (;;) {
        const auto starts = all_of<start_flows>(out);
        if (starts.empty())
            break;
        EXPECT_EQ(starts.size(), 1u);
        ++run.slots;
        now += 1500ms;
        agent_effects next;
        for (const flow_to_run& f : starts[0].flows) {
            EXPECT_EQ(f.port, f.spec.port == test_port::bt ? 6881 : 9775);
            EXPECT_EQ(f.role, agent_role(f.spec.dir));
            EXPECT_EQ(f.info_hash, flow_info_hash(a_grant().token, f.spec.index));
            const double mbps = path(f.spec);
            auto r = a.flow_done(now, f.spec.index, measured(f.spec.index, f.role, mbps));
            next.insert(next.end(), r.begin(), r.end());
            provider_side.push_back(measured(f.spec.index, provider_role(f.spec.dir), mbps));
        }
        out = std::move(next);
        // Keep the provider audible, as its pongs would.
        auto pong = a.receive(now, wire::encode_message(wire::pong{1}));
        out.insert(out.end(), pong.begin(), pong.end());
    }
    const auto collects = sent<collect>(out);
    EXPECT_EQ(collects.size(), 1u);
    if (collects.size() != 1)
        return run;
    EXPECT_EQ(collects[0].measurements.size(), run.schedule.size());
    now += 200ms;
    run.last = a.receive(now, wire::encode_message(collect_reply{provider_side, std::nullopt}));
    return run;
}

scripted_run play_run(agent& a, time_point& now, const agent_effects& granted, double bt_share,
                      std::vector<flow_spec> schedule) {
    return play_run(
        a, now, granted, [bt_share](const flow_spec& f) { return path_mbps(f, bt_share); },
        std::move(schedule));
}

TEST(agent_core, runs_a_whole_test_against_scripted_replies) {
    seeded_random rng(1);
    agent_options o = short_options();
    o.schedule.pairing = diff::direction_pairing::automatic;
    agent a(o, rng);
    time_point now = t0;
    auto out = a.start(now);
    const auto proposals = sent<negotiate>(out);
    ASSERT_EQ(proposals.size(), 1u);
    EXPECT_EQ(proposals[0].schedule.size(), 16u);
    EXPECT_EQ(a.state(), agent::phase::negotiating);

    out = a.receive(now + 10ms, wire::encode_message(queue_status{2, 3}));
    const auto q = all_of<queued>(out);
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].position, 2u);

    now += 50ms;
    out = a.receive(now, wire::encode_message(a_grant()));
    const auto started = all_of<run_started>(out);
    ASSERT_EQ(started.size(), 1u);
    EXPECT_EQ(started[0].flows, 16u);
    EXPECT_EQ(started[0].slots, 16u);
    const auto run = play_run(a, now, out, 1.0, proposals[0].schedule);
    // The first control flow of each direction apart, then the rest paired (a symmetric
    // 40 Mbit/s path): 2 + 14 / 2 slots.
    EXPECT_EQ(run.slots, 9u);
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_TRUE(a.finished());
    EXPECT_EQ(done[0].data.pairing, diff::direction_pairing::automatic);
    EXPECT_TRUE(done[0].data.directions_together);
    EXPECT_DOUBLE_EQ(done[0].data.pairing_upload_bps, 40e6);
    EXPECT_NEAR(done[0].data.pairing_download_bps, 40e6, 0.03 * 40e6); // the samples' wobble
    ASSERT_EQ(done[0].data.runs.size(), 1u);
    EXPECT_EQ(done[0].data.runs[0].size(), 16u);
    ASSERT_EQ(done[0].data.analysis.verdicts.size(), 4u);
    for (const auto& v : done[0].data.analysis.verdicts)
        EXPECT_EQ(v.outcome, verdict::none) << to_string(v.dir) << " " << to_string(v.port);
    // Finished: later input changes nothing.
    EXPECT_TRUE(a.receive(now + 1s, wire::encode_message(a_grant())).empty());
    EXPECT_FALSE(a.next_expiry());
}

// Plays a run whose upload flows get `up_mbps` and download flows `down_mbps` (no throttle);
// returns the slots as the core started them.
// `burst_share` < 1: every download's intervals alternate, ten at a time, between the full rate
// and this share of it (on/off cross traffic in the download direction).
std::vector<std::vector<flow_to_run>> play_path(agent& a, time_point& now, agent_effects out,
                                                double up_mbps, double down_mbps,
                                                double burst_share = 1.0) {
    std::vector<std::vector<flow_to_run>> slots;
    for (;;) {
        const auto starts = all_of<start_flows>(out);
        if (starts.empty())
            break;
        now += 1500ms;
        std::vector<flow_to_run> slot;
        agent_effects next;
        for (const flow_to_run& f : starts[0].flows) {
            slot.push_back(f);
            const double mbps = f.spec.dir == direction::upload ? up_mbps : down_mbps;
            auto m = measured(f.spec.index, f.role, mbps);
            for (std::size_t k = 0; k < m.samples.size(); ++k) {
                if ((k / 10) % 2 == 1)
                    m.samples[k] =
                        static_cast<std::uint64_t>(static_cast<double>(m.samples[k]) * burst_share);
            }
            auto r = a.flow_done(now, f.spec.index, std::move(m));
            next.insert(next.end(), r.begin(), r.end());
        }
        slots.push_back(std::move(slot));
        out = std::move(next);
        auto pong = a.receive(now, wire::encode_message(wire::pong{1}));
        out.insert(out.end(), pong.begin(), pong.end());
    }
    return slots;
}

TEST(agent_core, directions_pair_only_on_a_symmetric_enough_path) {
    struct row {
        diff::direction_pairing mode;
        double up, down;
        std::size_t slots;
        bool together;
        double pace_mbps; // of the paired uploads (0: unpaced, at the test's cap)
    };
    const row rows[] = {
        {diff::direction_pairing::automatic, 40, 42, 9, true, 0},
        // 10:1: paired, the uploads paced at (0.9 x 4.7 - 0.025 x 47) / 1.04 Mbit/s.
        {diff::direction_pairing::automatic, 4.7, 47, 9, true, 2.94},
        {diff::direction_pairing::automatic, 1.5, 47, 16, false, 0}, // no room for ACKs: apart
        {diff::direction_pairing::automatic, 47, 4.7, 16, false, 0}, // narrow download: apart
        {diff::direction_pairing::apart, 40, 42, 16, false, 0},
        {diff::direction_pairing::together, 4.7, 47, 8, true, 0}, // asked for, whatever the path
    };
    for (const row& r : rows) {
        SCOPED_TRACE(std::string(diff::to_string(r.mode)) + " " + std::to_string(r.up) + "/" +
                     std::to_string(r.down));
        seeded_random rng(4);
        agent_options o = short_options();
        o.schedule.pairing = r.mode;
        agent a(o, rng);
        time_point now = t0;
        const auto proposals = sent<negotiate>(a.start(now));
        ASSERT_EQ(proposals.size(), 1u);
        // Paired from the start, the negotiated groups say so; otherwise it is built apart.
        EXPECT_EQ(diff::slots_of(proposals[0].schedule).size(),
                  r.mode == diff::direction_pairing::together ? 8u : 16u);
        const auto slots =
            play_path(a, now, a.receive(now, wire::encode_message(a_grant())), r.up, r.down);
        EXPECT_EQ(slots.size(), r.slots);
        const std::uint64_t cap = o.schedule.max_rate_bps;
        for (std::size_t i = 0; i < slots.size(); ++i) {
            const auto& s = slots[i];
            if (s.size() == 2) {
                EXPECT_NE(s[0].spec.dir, s[1].spec.dir);
                EXPECT_EQ(s[0].spec.port, s[1].spec.port);
                EXPECT_EQ(s[0].spec.kind, s[1].spec.kind);
                if (r.mode == diff::direction_pairing::automatic) {
                    EXPECT_GE(i, 2u); // never before both directions were measured
                }
            }
            // Only an upload beside a download is paced below the cap.
            for (const flow_to_run& f : s) {
                if (r.pace_mbps > 0 && s.size() == 2 && f.spec.dir == direction::upload)
                    // The played flows' accounts are within 1% of the nominal rates.
                    EXPECT_NEAR(static_cast<double>(f.max_rate_bps) / 1e6, r.pace_mbps, 0.05);
                else
                    EXPECT_EQ(f.max_rate_bps, cap);
            }
        }
    }
}

TEST(agent_core, directions_stay_apart_when_the_download_reference_was_not_steady) {
    for (const double share : {0.3, 0.9}) {
        SCOPED_TRACE(share);
        seeded_random rng(4);
        agent_options o = short_options();
        o.schedule.pairing = diff::direction_pairing::automatic;
        agent a(o, rng);
        time_point now = t0;
        ASSERT_EQ(sent<negotiate>(a.start(now)).size(), 1u);
        const auto slots =
            play_path(a, now, a.receive(now, wire::encode_message(a_grant())), 40, 42, share);
        // At 30% half the time, half its intervals are below 0.8 of its peak: apart. At 90%
        // every interval is steady: paired.
        EXPECT_EQ(slots.size(), share < 0.5 ? 16u : 9u);
    }
}

TEST(agent_core, a_throttled_comparison_is_rerun_and_confirmed) {
    seeded_random rng(2);
    agent_options o = short_options();
    o.confirm = true;
    agent a(o, rng);
    time_point now = t0;
    auto out = a.start(now);
    const auto first = sent<negotiate>(out);
    ASSERT_EQ(first.size(), 1u);
    now += 10ms;
    out = a.receive(now, wire::encode_message(a_grant()));
    auto run = play_run(a, now, out, 0.1, first[0].schedule);
    // Every BT flow at a tenth of the rate: all four comparisons throttled by content, so one
    // port's rerun per direction confirms both (the neutral port's: BT and control, two
    // repetitions each).
    EXPECT_TRUE(all_of<test_done>(run.last).empty());
    const auto rerun = sent<negotiate>(run.last);
    ASSERT_EQ(rerun.size(), 1u);
    EXPECT_EQ(rerun[0].schedule.size(), 8u);
    for (const auto& f : rerun[0].schedule)
        EXPECT_EQ(f.port, test_port::neutral);
    EXPECT_EQ(a.state(), agent::phase::negotiating);
    now += 10ms;
    out = a.receive(now, wire::encode_message(a_grant()));
    const auto started = all_of<run_started>(out);
    ASSERT_EQ(started.size(), 1u);
    EXPECT_EQ(started[0].run, 1u);
    run = play_run(a, now, out, 0.1, rerun[0].schedule);
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    ASSERT_EQ(done[0].data.runs.size(), 2u);
    ASSERT_EQ(done[0].data.confirmed_keys.size(), 1u);
    EXPECT_EQ(done[0].data.confirmed_keys[0].size(), 2u);
    EXPECT_EQ(done[0].data.pooled.size(), 2u);
    ASSERT_EQ(done[0].data.analysis.verdicts.size(), 4u);
    for (const auto& v : done[0].data.analysis.verdicts) {
        EXPECT_EQ(v.outcome, verdict::throttled) << to_string(v.dir) << " " << to_string(v.port);
        EXPECT_EQ(v.why, basis::content);
        EXPECT_TRUE(v.confirmed);
        if (v.port == test_port::bt) {
            EXPECT_EQ(v.runs, 1u);
            EXPECT_EQ(v.confirmed_by, test_port::neutral);
        } else {
            EXPECT_EQ(v.runs, 2u);
            EXPECT_FALSE(v.confirmed_by);
        }
    }
}

TEST(agent_core, a_rerun_that_would_pass_the_time_budget_runs_shorter_flows) {
    for (const long budget_ms : {0L, 42'000L}) {
        SCOPED_TRACE(budget_ms);
        seeded_random rng(2);
        agent_options o = short_options();
        o.confirm = true;
        o.schedule.flow_duration = 2500ms;
        o.schedule.time_budget = std::chrono::milliseconds(budget_ms);
        agent a(o, rng);
        time_point now = t0;
        const auto first = sent<negotiate>(a.start(now));
        ASSERT_EQ(first.size(), 1u);
        // 30 s queued behind other tests at the provider (its pongs heard): not the test's
        // own time.
        for (int i = 0; i < 6; ++i) {
            now += 5s;
            EXPECT_FALSE(failure(a.receive(now, wire::encode_message(wire::pong{1}))));
        }
        // 16 slots played at 1.5 s each: 24 s gone when the first run ends (less than the
        // flows as scheduled, so no overhead per slot); 8 rerun slots in the 18 s left.
        const auto run = play_run(a, now, a.receive(now, wire::encode_message(a_grant())), 0.1,
                                  first[0].schedule);
        const auto rerun = sent<negotiate>(run.last);
        ASSERT_EQ(rerun.size(), 1u);
        ASSERT_EQ(rerun[0].schedule.size(), 8u);
        for (const auto& f : rerun[0].schedule) {
            if (budget_ms == 0)
                EXPECT_EQ(f.duration_ms, 2500u);
            else // (42 s - 24.0 .. 24.3 s - the 1 s reserve) / 8
                EXPECT_TRUE(f.duration_ms > 2075 && f.duration_ms <= 2125) << f.duration_ms;
        }
    }
}

// Starts `a` and grants its test: the schedule it proposed and the grant's effects.
struct granted_test {
    std::vector<flow_spec> schedule;
    agent_effects granted;
};
granted_test start_granted(agent& a, time_point now) {
    const auto out = a.start(now);
    const auto proposed = sent<negotiate>(out);
    EXPECT_EQ(proposed.size(), 1u);
    return {proposed.empty() ? std::vector<flow_spec>{} : proposed[0].schedule,
            a.receive(now, wire::encode_message(a_grant()))};
}

TEST(agent_core, a_port_verdict_is_confirmed_by_control_flows_alone) {
    seeded_random rng(4);
    agent_options o = short_options();
    o.confirm = true;
    agent a(o, rng);
    time_point now = t0;
    const granted_test first = start_granted(a, now);
    // Whatever goes to the BT port at a tenth of the rate, both directions.
    const path_model port_throttle = [](const flow_spec& f) {
        return f.port == test_port::bt ? 4.0 : 40.0;
    };
    auto run = play_run(a, now, first.granted, port_throttle, first.schedule);
    const auto rerun = sent<negotiate>(run.last);
    ASSERT_EQ(rerun.size(), 1u);
    // Per direction: control on the BT port and on the neutral port, twice each.
    EXPECT_EQ(rerun[0].schedule.size(), 8u);
    for (const auto& f : rerun[0].schedule)
        EXPECT_EQ(f.kind, flow_kind::control);
    const auto out = a.receive(now, wire::encode_message(a_grant()));
    run = play_run(a, now, out, port_throttle, rerun[0].schedule);
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    ASSERT_EQ(done[0].data.analysis.verdicts.size(), 4u);
    for (const auto& v : done[0].data.analysis.verdicts) {
        if (v.port == test_port::neutral) {
            EXPECT_EQ(v.outcome, verdict::none) << to_string(v.dir);
            continue;
        }
        EXPECT_EQ(v.outcome, verdict::throttled) << to_string(v.dir);
        EXPECT_EQ(v.why, basis::port);
        EXPECT_TRUE(v.confirmed);
        EXPECT_EQ(v.runs, 2u);
        // The content figures are the first run's (the rerun had no BT flow).
        EXPECT_NEAR(v.bt_mbps, 4.0, 0.5);
        EXPECT_EQ(v.content.test_flows, 2u);
    }
}

TEST(agent_core, a_pooled_comparison_its_ports_rerun_did_not_confirm_is_rerun_on_its_own) {
    seeded_random rng(2);
    agent_options o = short_options();
    o.confirm = true;
    agent a(o, rng);
    time_point now = t0;
    const granted_test first = start_granted(a, now);
    auto run = play_run(a, now, first.granted, 0.1, first.schedule);
    const auto rerun = sent<negotiate>(run.last);
    ASSERT_EQ(rerun.size(), 1u);
    auto out = a.receive(now, wire::encode_message(a_grant()));
    // The download's neutral-port rerun runs its BT flows at full rate (a burst of cross traffic
    // on the first run's control flows would do the same to it); the upload's stays throttled.
    const path_model download_clears = [](const flow_spec& f) {
        return f.kind == flow_kind::bt && f.dir == direction::upload ? 4.0 : 40.0;
    };
    run = play_run(a, now, out, download_clears, rerun[0].schedule);
    EXPECT_TRUE(all_of<test_done>(run.last).empty());
    // So the download's BT port, pooled onto it, gets a rerun of its own.
    const auto own = sent<negotiate>(run.last);
    ASSERT_EQ(own.size(), 1u);
    for (const auto& f : own[0].schedule) {
        EXPECT_EQ(f.dir, direction::download);
        EXPECT_TRUE(f.port == test_port::bt ||
                    (f.port == test_port::neutral && f.kind == flow_kind::control));
    }
    out = a.receive(now, wire::encode_message(a_grant()));
    EXPECT_EQ(all_of<run_started>(out).at(0).run, 2u);
    // There the throttle holds again: the BT port is confirmed by its own rerun.
    run = play_run(a, now, out, 0.1, own[0].schedule);
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    const auto& data = done[0].data;
    ASSERT_EQ(data.runs.size(), 3u);
    ASSERT_EQ(data.confirmed_keys.size(), 2u);
    EXPECT_EQ(data.pooled.size(), 1u); // the upload's, confirmed by its neutral port
    ASSERT_EQ(data.analysis.verdicts.size(), 4u);
    for (const auto& v : data.analysis.verdicts) {
        const bool cleared = v.dir == direction::download && v.port == test_port::neutral;
        EXPECT_EQ(v.outcome, cleared ? verdict::inconclusive : verdict::throttled)
            << to_string(v.dir) << " " << to_string(v.port);
        EXPECT_EQ(v.confirmed, !cleared);
        EXPECT_EQ(v.confirmed_by.has_value(),
                  v.dir == direction::upload && v.port == test_port::bt);
    }
}

// The first run's download references on the neutral port: one hit by a burst of cross traffic
// (6 of 40 Mbit/s), so that comparison is inconclusive while the throttle shows everywhere else.
// The rerun then accuses it: the two runs split, and a third run on that comparison alone breaks
// the tie, merged with the positive run.
TEST(agent_core, a_split_between_a_positive_run_and_an_inconclusive_one_gets_a_tie_break) {
    for (const double tie_break_bt_share : {0.1, 1.0}) {
        SCOPED_TRACE("tie-break BT share " + std::to_string(tie_break_bt_share));
        seeded_random rng(2);
        agent_options o = short_options();
        o.confirm = true;
        agent a(o, rng);
        time_point now = t0;
        const granted_test first = start_granted(a, now);
        int hit = 0;
        const path_model burst = [&hit](const flow_spec& f) {
            if (f.dir == direction::download && f.port == test_port::neutral &&
                f.kind == flow_kind::control && hit++ == 1)
                return 6.0;
            return path_mbps(f, 0.1);
        };
        auto run = play_run(a, now, first.granted, burst, first.schedule);
        ASSERT_EQ(all_of<test_done>(run.last).size(), 0u);
        const auto rerun = sent<negotiate>(run.last);
        ASSERT_EQ(rerun.size(), 1u);
        auto out = a.receive(now, wire::encode_message(a_grant()));
        run = play_run(a, now, out, 0.1, rerun[0].schedule);
        const auto tie = sent<negotiate>(run.last);
        ASSERT_EQ(tie.size(), 1u);
        for (const auto& f : tie[0].schedule) {
            EXPECT_EQ(f.dir, direction::download);
            EXPECT_EQ(f.port, test_port::neutral);
        }
        out = a.receive(now, wire::encode_message(a_grant()));
        EXPECT_EQ(all_of<run_started>(out).at(0).run, 2u);
        run = play_run(a, now, out, tie_break_bt_share, tie[0].schedule);
        const auto done = all_of<test_done>(run.last);
        ASSERT_EQ(done.size(), 1u);
        const auto& data = done[0].data;
        ASSERT_EQ(data.runs.size(), 3u);
        const port_verdict* v =
            diff::find_verdict(data.analysis, {direction::download, test_port::neutral});
        ASSERT_NE(v, nullptr);
        EXPECT_EQ(v->runs, 3u);
        if (tie_break_bt_share < 1.0) {
            EXPECT_EQ(v->outcome, verdict::throttled);
            EXPECT_EQ(v->why, basis::content);
            EXPECT_TRUE(v->confirmed);
        } else {
            // One run accuses, one clears: neither can stand alone.
            EXPECT_EQ(v->outcome, verdict::inconclusive);
            EXPECT_FALSE(v->confirmed);
        }
    }
}

TEST(agent_core, a_passing_throttle_is_inconclusive_after_every_rerun) {
    seeded_random rng(2);
    agent_options o = short_options();
    o.confirm = true;
    agent a(o, rng);
    time_point now = t0;
    const granted_test first = start_granted(a, now);
    auto run = play_run(a, now, first.granted, 0.1, first.schedule);
    // The throttle was a passing one: every rerun's BT flows run at full rate. Neither port may
    // accuse on one run: both comparisons of each direction end inconclusive, after the pooled
    // BT ports' own reruns.
    for (std::uint32_t rerun_run = 1; rerun_run <= 2; ++rerun_run) {
        const auto rerun = sent<negotiate>(run.last);
        ASSERT_EQ(rerun.size(), 1u) << "run " << rerun_run;
        const auto out = a.receive(now, wire::encode_message(a_grant()));
        run = play_run(a, now, out, 1.0, rerun[0].schedule);
    }
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    ASSERT_EQ(done[0].data.analysis.verdicts.size(), 4u);
    for (const auto& v : done[0].data.analysis.verdicts) {
        EXPECT_EQ(v.outcome, verdict::inconclusive) << to_string(v.dir) << " " << to_string(v.port);
        EXPECT_FALSE(v.confirmed);
        EXPECT_FALSE(v.confirmed_by);
    }
}

TEST(agent_core, the_byte_budget_confirms_what_fits_and_leaves_the_rest_inconclusive) {
    seeded_random rng(2);
    agent_options o = short_options();
    o.confirm = true;
    o.schedule.max_rate_bps = 40'000'000; // a flow of 1 s moves at most 5.8 MB
    o.schedule.max_test_bytes = 62'000'000;
    agent a(o, rng);
    time_point now = t0;
    auto out = a.start(now);
    const auto first = sent<negotiate>(out);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].max_rate_bps, 40'000'000u); // asked of the provider's seeds too
    now += 10ms;
    out = a.receive(now, wire::encode_message(a_grant()));
    // The first run moves 44 MB (control at 5 MB a flow, BT at 0.5 MB): 18 MB are left. Each
    // direction's two comparisons are confirmed by its neutral port's rerun (pooled), four flows:
    // BT expected at 0.75 MB, control at the cap's 5.8 MB, 13.1 MB. The download's fits, the
    // upload's would pass 62 MB. (Each rerun slot must also fit at the cap: 44 + 10.5 + 5.8.)
    auto run = play_run(a, now, out, 0.1, first[0].schedule);
    const auto rerun = sent<negotiate>(run.last);
    ASSERT_EQ(rerun.size(), 1u);
    EXPECT_EQ(rerun[0].schedule.size(), 4u);
    now += 10ms;
    out = a.receive(now, wire::encode_message(a_grant()));
    run = play_run(a, now, out, 0.1, rerun[0].schedule);
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    const auto& data = done[0].data;
    ASSERT_EQ(data.confirmed_keys.size(), 1u);
    EXPECT_EQ(data.confirmed_keys[0].size(), 1u);
    // The upload's neutral port, and its BT port pooled onto it.
    ASSERT_EQ(data.unconfirmed_keys.size(), 2u);
    for (const auto& k : data.unconfirmed_keys)
        EXPECT_EQ(k.dir, direction::upload);
    EXPECT_EQ(data.pooled.size(), 1u);
    EXPECT_LE(diff::agent_bytes(data), o.schedule.max_test_bytes);
    for (const auto& v : data.analysis.verdicts) {
        const bool confirmed = v.dir == direction::download;
        EXPECT_EQ(v.outcome, confirmed ? verdict::throttled : verdict::inconclusive)
            << to_string(v.dir) << " " << to_string(v.port);
        EXPECT_EQ(v.confirmed, confirmed);
    }
}

TEST(agent_core, a_rerun_slot_that_could_break_the_budget_is_not_run) {
    seeded_random rng(2);
    agent_options o = short_options();
    o.confirm = true;
    o.schedule.max_rate_bps = 40'000'000;
    o.schedule.max_test_bytes = 80'000'000;
    agent a(o, rng);
    time_point now = t0;
    auto out = a.start(now);
    const auto first = sent<negotiate>(out);
    out = a.receive(now, wire::encode_message(a_grant()));
    auto run = play_run(a, now, out, 0.1, first[0].schedule);
    const auto rerun = sent<negotiate>(run.last);
    ASSERT_EQ(rerun.size(), 1u);
    out = a.receive(now, wire::encode_message(a_grant()));
    // The path stops throttling: every rerun flow moves 5 MB, more than the first run
    // suggested, so a slot whose flows at the cap could pass the budget is left out.
    run = play_run(a, now, out, 1.0, rerun[0].schedule);
    EXPECT_LT(run.slots, rerun[0].schedule.size());
    const auto done = all_of<test_done>(run.last);
    ASSERT_EQ(done.size(), 1u);
    const auto& data = done[0].data;
    EXPECT_LE(diff::agent_bytes(data), o.schedule.max_test_bytes);
    // The rerun holds both neutral ports (26.2 MB expected of the 36 MB left). The skipped slot's
    // comparison goes unconfirmed, with the BT port pooled onto it; the direction rerun in full
    // says none now, so it cannot accuse either (one run cannot accuse nor clear), and its BT
    // port's own rerun no longer fits: unconfirmed too, and no third run.
    EXPECT_EQ(data.runs.size(), 2u);
    EXPECT_EQ(data.unconfirmed_keys.size(), 3u);
    EXPECT_TRUE(data.pooled.empty());
    for (const auto& v : data.analysis.verdicts)
        EXPECT_EQ(v.outcome, verdict::inconclusive) << to_string(v.dir) << " " << to_string(v.port);
}

TEST(agent_core, replies_out_of_order_end_the_test_as_protocol_errors) {
    seeded_random rng(3);
    {
        agent a(short_options(), rng);
        (void)a.start(t0);
        const auto out = a.receive(t0 + 1ms, wire::encode_message(collect_reply{}));
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, errc::protocol_error);
        EXPECT_EQ(a.state(), agent::phase::failed);
    }
    {
        agent a(short_options(), rng);
        (void)a.start(t0);
        auto out = a.receive(t0 + 1ms, wire::encode_message(a_grant()));
        ASSERT_EQ(all_of<start_flows>(out).size(), 1u);
        // A queue position after the grant is late, not wrong.
        out = a.receive(t0 + 2ms, wire::encode_message(queue_status{1, 1}));
        EXPECT_EQ(failure(out), nullptr);
        EXPECT_TRUE(all_of<queued>(out).empty());
        // A second grant while flows run is.
        out = a.receive(t0 + 3ms, wire::encode_message(a_grant(4)));
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, errc::protocol_error);
        // Reports of abandoned flows are ignored.
        EXPECT_TRUE(a.flow_done(t0 + 1s, 0, flow_measurement{}).empty());
    }
    {
        agent a(short_options(), rng);
        (void)a.start(t0);
        const bytes garbage{0x01, 0x02, 0x03};
        const auto out = a.receive(t0 + 1ms, garbage);
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, errc::protocol_error);
    }
    {
        agent a(short_options(), rng);
        (void)a.start(t0);
        grant no_ports = a_grant();
        no_ports.neutral_port = 0;
        const auto out = a.receive(t0 + 1ms, wire::encode_message(no_ports));
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, errc::protocol_error);
    }
}

TEST(agent_core, a_refusal_ends_the_test_with_the_providers_reason) {
    seeded_random rng(4);
    const std::pair<wire::wire_error, errc> cases[] = {
        {wire::wire_error::busy, errc::busy},
        {wire::wire_error::refused, errc::invalid_argument},
        {wire::wire_error::unsupported_version, errc::unsupported_version}};
    for (const auto& [code, expected] : cases) {
        agent a(short_options(), rng);
        (void)a.start(t0);
        const auto out = a.receive(t0 + 5ms, error_reply(code, "queue full, try later"));
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, expected);
        EXPECT_NE(f->why.reason.find("queue full, try later"), std::string::npos);
        EXPECT_TRUE(all_of<test_done>(out).empty());
    }
}

TEST(agent_core, a_provider_that_falls_silent_mid_test_ends_it_within_the_silence_timeout) {
    seeded_random rng(5);
    const agent_options o = short_options();
    agent a(o, rng);
    (void)a.start(t0);
    const time_point granted_at = t0 + 20ms;
    auto out = a.receive(granted_at, wire::encode_message(a_grant()));
    ASSERT_EQ(all_of<start_flows>(out).size(), 1u);
    // The provider freezes: no pong, no reply. The flows of the slot never report either.
    // Drive the core by its own timer and count what it does until it gives up.
    std::size_t pings = 0;
    time_point now = granted_at;
    const test_failed* failed = nullptr;
    agent_effects last;
    for (int step = 0; step < 100 && !failed; ++step) {
        const auto next = a.next_expiry();
        ASSERT_TRUE(next);
        ASSERT_GT(*next, now);
        now = *next;
        last = a.handle_expiry(now);
        pings += sent<wire::ping>(last).size();
        failed = failure(last);
    }
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(failed->why.code, errc::timeout);
    EXPECT_NE(failed->why.reason.find("stopped answering"), std::string::npos);
    EXPECT_EQ(now - granted_at, o.silence_timeout);
    // A keepalive every 5 s until the 15 s of silence are up: at 5, 10 and 15 s after start.
    EXPECT_EQ(pings, 3u);
    EXPECT_TRUE(all_of<test_done>(last).empty());
    EXPECT_FALSE(a.next_expiry());
}

TEST(agent_core, pongs_keep_a_long_queue_wait_alive_until_the_queue_timeout) {
    seeded_random rng(6);
    agent_options o = short_options();
    o.queue_timeout = 60s;
    agent a(o, rng);
    (void)a.start(t0);
    time_point now = t0;
    const test_failed* failed = nullptr;
    agent_effects last;
    for (int step = 0; step < 100 && !failed; ++step) {
        now = *a.next_expiry();
        last = a.handle_expiry(now);
        for (const auto& p : sent<wire::ping>(last)) {
            auto r = a.receive(now + 30ms, wire::encode_message(wire::pong{p.nonce}));
            EXPECT_EQ(failure(r), nullptr);
        }
        failed = failure(last);
    }
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(failed->why.code, errc::timeout);
    EXPECT_NE(failed->why.reason.find("no slot"), std::string::npos);
    EXPECT_EQ(now, t0 + o.queue_timeout);
    // The provider is told the agent gave up its place.
    const auto cancels = sent<cancel>(last);
    EXPECT_EQ(cancels.size(), 1u);
}

TEST(agent_core, a_late_timer_changes_nothing_observable) {
    // An input past the silence deadline first expires the test, whatever it carries.
    seeded_random rng(7);
    agent a(short_options(), rng);
    (void)a.start(t0);
    const auto out = a.receive(t0 + 16s, wire::encode_message(a_grant()));
    const auto* f = failure(out);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->why.code, errc::timeout);
    EXPECT_TRUE(all_of<start_flows>(out).empty());
}

TEST(agent_core, collect_reply_must_come_within_the_reply_timeout) {
    seeded_random rng(8);
    agent_options o = short_options();
    o.reply_timeout = 8s;
    agent a(o, rng);
    time_point now = t0;
    auto proposal = sent<negotiate>(a.start(now));
    ASSERT_EQ(proposal.size(), 1u);
    auto out = a.receive(now, wire::encode_message(a_grant()));
    // Report every flow; then the provider keeps ponging but never answers the collect.
    for (;;) {
        const auto starts = all_of<start_flows>(out);
        if (starts.empty())
            break;
        now += 1100ms;
        (void)a.receive(now, wire::encode_message(wire::pong{0}));
        agent_effects next;
        for (const auto& f : starts[0].flows) {
            auto r = a.flow_done(now, f.spec.index, measured(f.spec.index, f.role, 10));
            next.insert(next.end(), r.begin(), r.end());
        }
        out = next;
    }
    ASSERT_EQ(sent<collect>(out).size(), 1u);
    EXPECT_EQ(a.state(), agent::phase::collecting);
    const time_point collected = now;
    const test_failed* failed = nullptr;
    for (int step = 0; step < 20 && !failed; ++step) {
        now = *a.next_expiry();
        const auto r = a.handle_expiry(now);
        for (const auto& p : sent<wire::ping>(r))
            (void)a.receive(now, wire::encode_message(wire::pong{p.nonce}));
        failed = failure(r);
        if (failed) {
            EXPECT_EQ(failed->why.code, errc::timeout);
            EXPECT_NE(failed->why.reason.find("collect_reply"), std::string::npos);
        }
    }
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(now - collected, o.reply_timeout);
}

TEST(agent_core, cancel_withdraws_the_test_and_a_lost_connection_fails_it) {
    seeded_random rng(9);
    {
        agent a(short_options(), rng);
        (void)a.start(t0);
        const auto out = a.cancel(t0 + 1s);
        EXPECT_EQ(sent<cancel>(out).size(), 1u);
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, errc::closed);
    }
    {
        agent a(short_options(), rng);
        (void)a.start(t0);
        (void)a.receive(t0 + 1ms, wire::encode_message(a_grant()));
        const auto out = a.on_closed(t0 + 2s, make_error(errc::io_error, "connection reset"));
        const auto* f = failure(out);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->why.code, errc::io_error);
        EXPECT_TRUE(a.on_closed(t0 + 3s, make_error(errc::closed, "again")).empty());
    }
}

TEST(agent_core, the_same_seed_gives_the_same_schedule_and_flow_seeds) {
    auto trace = [](std::uint64_t seed) {
        seeded_random rng(seed);
        agent a(short_options(), rng);
        auto out = a.start(t0);
        std::vector<std::uint64_t> v;
        const auto proposal = sent<negotiate>(out);
        for (const auto& f : proposal.at(0).schedule)
            v.push_back(f.index * 1000u + f.group * 10u + static_cast<unsigned>(f.kind));
        out = a.receive(t0, wire::encode_message(a_grant()));
        const auto slot = all_of<start_flows>(out);
        for (const auto& f : slot.at(0).flows)
            v.push_back(f.seed);
        return v;
    };
    EXPECT_EQ(trace(10), trace(10));
    EXPECT_NE(trace(10), trace(11));
}

} // namespace
} // namespace glasnode::proto::negotiation
