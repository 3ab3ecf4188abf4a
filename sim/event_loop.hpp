// The simulator's discrete-event loop and virtual clock, and the trace hash that proves a run
// reproducible.
//
// Time. The loop's clock is virtual: std::chrono::steady_clock::time_point values built from
// virtual_epoch plus offsets, so the sans-IO cores receive the same type of `now` as from the
// real clock, but nothing here ever reads a real clock. Time only moves when the loop takes the
// next event.
//
// Order. Events are kept in a binary heap on (time, sequence): the sequence is the order in
// which events were scheduled, so events at the same virtual time run in the order they were
// scheduled (first scheduled, first run). Together with seeded randomness this makes a run a
// pure function of its inputs.
//
// Trace. Before an event runs, the loop folds its time (offset from the epoch), kind, node and
// payload bytes into a 64-bit FNV-1a hash. Same inputs and build give the same hash; any change
// in what happened, when, or in any message byte changes it (with overwhelming probability).
// Cancelled events are not folded.
//
// Errors: none; scheduling in the past runs the event at the current time (never backwards).
// Thread-safety: none; one thread owns a loop. Actions may schedule and cancel events.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <vector>

#include "overlay/wire/bytes.hpp"

namespace glasnode::sim {

using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

// Far from the clock's zero so that a default-constructed time_point (which the cores use as
// "never") is never a real instant of a run.
inline constexpr time_point virtual_epoch = time_point{} + std::chrono::hours(24);

// 64-bit FNV-1a over bytes (Fowler, Noll and Vo): cheap, and every byte of input changes the
// state, which is all a reproducibility check needs (it is not collision-resistant).
class trace_hash {
public:
    void add_byte(std::uint8_t b) noexcept {
        m_state ^= b;
        m_state *= 0x100000001b3ULL;
    }
    // Eight bytes, least significant first.
    void add_u64(std::uint64_t v) noexcept {
        for (int i = 0; i < 8; ++i)
            add_byte(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    // The length, then the bytes (so that ("ab", "c") and ("a", "bc") differ).
    void add_bytes(byte_view data) noexcept {
        add_u64(data.size());
        for (std::uint8_t b : data)
            add_byte(b);
    }
    std::uint64_t value() const noexcept { return m_state; }

private:
    std::uint64_t m_state = 0xcbf29ce484222325ULL;
};

// What an event is, for the trace: a kind chosen by the driver and the node it happens at.
struct event_tag {
    std::uint16_t kind = 0;
    std::uint32_t node = 0;
};

using event_id = std::uint64_t;

class event_loop {
public:
    // The action receives the event's payload (moved out of the queue).
    using action = std::function<void(bytes payload)>;

    explicit event_loop(time_point start = virtual_epoch) : m_now(start), m_start(start) {}
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    time_point now() const noexcept { return m_now; }
    // Virtual time elapsed since the loop was made.
    duration elapsed() const noexcept { return m_now - m_start; }

    // Runs `run(payload)` at `when` (now, if `when` is in the past). The payload is folded into
    // the trace when the event runs.
    event_id at(time_point when, event_tag tag, bytes payload, action run);
    event_id after(duration delay, event_tag tag, bytes payload, action run) {
        return at(m_now + delay, tag, std::move(payload), std::move(run));
    }
    // The event will not run (nor enter the trace). Unknown or past ids are ignored.
    void cancel(event_id id);

    // Runs the next event; false when none is left.
    bool step();
    // Runs events while the next one is due at or before `limit`; true if the queue emptied.
    bool run_until(time_point limit);

    bool empty() const noexcept { return m_queued.empty(); }
    std::size_t executed() const noexcept { return m_executed; }
    std::uint64_t trace() const noexcept { return m_trace.value(); }

private:
    struct event {
        time_point when;
        event_id seq;
        event_tag tag;
        bytes payload;
        action run;
    };
    // std::push_heap builds a max-heap: "later" compares greater-than so the earliest is on top.
    static bool later(const event& a, const event& b) noexcept {
        return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
    // Drops cancelled events from the top; false when the heap is then empty.
    bool settle();

    std::vector<event> m_heap;
    // Ids of the events in the heap that will run, and of those that will not. Ordered sets:
    // only looked up, but no behaviour can then depend on a hash order.
    std::set<event_id> m_queued;
    std::set<event_id> m_cancelled;
    time_point m_now;
    time_point m_start;
    event_id m_next_seq = 0;
    std::size_t m_executed = 0;
    trace_hash m_trace;
};

} // namespace glasnode::sim
