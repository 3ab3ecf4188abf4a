#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sim/event_loop.hpp"

namespace glasnode::sim {
namespace {

using namespace std::chrono_literals;

bytes text(std::string_view s) {
    return bytes(s.begin(), s.end());
}

TEST(sim_trace_hash, is_fnv1a_64) {
    trace_hash empty;
    EXPECT_EQ(empty.value(), 0xcbf29ce484222325ULL);
    // Reference values of 64-bit FNV-1a (Fowler, Noll, Vo test vectors).
    trace_hash a;
    a.add_byte('a');
    EXPECT_EQ(a.value(), 0xaf63dc4c8601ec8cULL);
    trace_hash foobar;
    for (char c : std::string_view("foobar"))
        foobar.add_byte(static_cast<std::uint8_t>(c));
    EXPECT_EQ(foobar.value(), 0x85944171f73967e8ULL);
}

TEST(sim_trace_hash, frames_byte_strings_by_length) {
    trace_hash x, y;
    x.add_bytes(text("ab"));
    x.add_bytes(text("c"));
    y.add_bytes(text("a"));
    y.add_bytes(text("bc"));
    EXPECT_NE(x.value(), y.value());
}

TEST(sim_event_loop, runs_in_time_order_and_ties_in_scheduling_order) {
    event_loop loop;
    std::vector<std::string> order;
    std::vector<duration> times;
    auto record = [&](std::string name) {
        return [&, name](bytes) {
            order.push_back(name);
            times.push_back(loop.elapsed());
        };
    };
    loop.after(5ms, {1, 0}, {}, record("a"));
    loop.after(1ms, {1, 0}, {}, record("b"));
    loop.after(5ms, {1, 0}, {}, record("c"));
    loop.after(1ms, {1, 0}, {}, record("d"));
    while (loop.step()) {
    }
    EXPECT_EQ(order, (std::vector<std::string>{"b", "d", "a", "c"}));
    EXPECT_EQ(times, (std::vector<duration>{1ms, 1ms, 5ms, 5ms}));
    EXPECT_EQ(loop.executed(), 4u);
    EXPECT_TRUE(loop.empty());
}

TEST(sim_event_loop, starts_at_the_virtual_epoch_and_never_goes_back) {
    event_loop loop;
    EXPECT_EQ(loop.now(), virtual_epoch);
    EXPECT_NE(loop.now(), time_point{});
    time_point late{};
    loop.after(10ms, {1, 0}, {}, [&](bytes) {
        // Scheduled in the past: runs now, after what is already due now.
        loop.at(virtual_epoch, {2, 0}, {}, [&](bytes) { late = loop.now(); });
    });
    while (loop.step()) {
    }
    EXPECT_EQ(late, virtual_epoch + 10ms);
}

TEST(sim_event_loop, hands_the_payload_to_the_action) {
    event_loop loop;
    bytes got;
    loop.after(1ms, {1, 0}, text("hello"), [&](bytes p) { got = std::move(p); });
    EXPECT_TRUE(loop.step());
    EXPECT_EQ(got, text("hello"));
    EXPECT_FALSE(loop.step());
}

TEST(sim_event_loop, cancelled_events_neither_run_nor_enter_the_trace) {
    event_loop with_cancel, without;
    int runs = 0;
    with_cancel.after(1ms, {1, 0}, text("x"), [&](bytes) { ++runs; });
    const event_id gone = with_cancel.after(2ms, {1, 0}, text("y"), [&](bytes) { runs += 100; });
    with_cancel.cancel(gone);
    with_cancel.cancel(gone);  // twice: harmless
    with_cancel.cancel(12345); // never issued: harmless
    without.after(1ms, {1, 0}, text("x"), [](bytes) {});
    EXPECT_FALSE(with_cancel.empty());
    while (with_cancel.step()) {
    }
    while (without.step()) {
    }
    EXPECT_EQ(runs, 1);
    EXPECT_TRUE(with_cancel.empty());
    EXPECT_EQ(with_cancel.executed(), 1u);
    EXPECT_EQ(with_cancel.trace(), without.trace());
    // An event that already ran cannot be cancelled into the bookkeeping.
    const event_id ran = with_cancel.after(1ms, {1, 0}, {}, [](bytes) {});
    EXPECT_TRUE(with_cancel.step());
    with_cancel.cancel(ran);
    EXPECT_TRUE(with_cancel.empty());
}

TEST(sim_event_loop, run_until_stops_at_the_limit) {
    event_loop loop;
    int runs = 0;
    loop.after(1s, {1, 0}, {}, [&](bytes) { ++runs; });
    loop.after(3s, {1, 0}, {}, [&](bytes) { ++runs; });
    EXPECT_FALSE(loop.run_until(virtual_epoch + 2s));
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(loop.elapsed(), 1s);
    EXPECT_TRUE(loop.run_until(virtual_epoch + 3s));
    EXPECT_EQ(runs, 2);
}

// Two loops fed the same events hash the same; a change in any folded field changes the hash.
TEST(sim_event_loop, trace_covers_time_kind_node_and_payload) {
    struct ev {
        duration at;
        event_tag tag;
        std::string payload;
    };
    const std::vector<ev> base{{1ms, {1, 0}, "negotiate"}, {2ms, {2, 1}, "grant"}};
    auto hash_of = [](const std::vector<ev>& evs) {
        event_loop loop;
        for (const ev& e : evs)
            loop.after(e.at, e.tag, text(e.payload), [](bytes) {});
        while (loop.step()) {
        }
        return loop.trace();
    };
    const std::uint64_t h = hash_of(base);
    EXPECT_EQ(hash_of(base), h);
    auto changed = base;
    changed[1].at = 3ms;
    EXPECT_NE(hash_of(changed), h);
    changed = base;
    changed[1].tag.kind = 3;
    EXPECT_NE(hash_of(changed), h);
    changed = base;
    changed[1].tag.node = 2;
    EXPECT_NE(hash_of(changed), h);
    changed = base;
    changed[1].payload = "grand";
    EXPECT_NE(hash_of(changed), h);
}

} // namespace
} // namespace glasnode::sim
