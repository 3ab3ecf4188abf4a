#include "sim/event_loop.hpp"

#include <algorithm>

namespace glasnode::sim {

event_id event_loop::at(time_point when, event_tag tag, bytes payload, action run) {
    const event_id id = m_next_seq++;
    m_heap.push_back(event{std::max(when, m_now), id, tag, std::move(payload), std::move(run)});
    std::push_heap(m_heap.begin(), m_heap.end(), later);
    m_queued.insert(id);
    return id;
}

void event_loop::cancel(event_id id) {
    // Only an event still queued: an id that already ran must not linger among the cancelled.
    if (m_queued.erase(id) > 0)
        m_cancelled.insert(id);
}

bool event_loop::settle() {
    while (!m_heap.empty()) {
        const auto it = m_cancelled.find(m_heap.front().seq);
        if (it == m_cancelled.end())
            return true;
        m_cancelled.erase(it);
        std::pop_heap(m_heap.begin(), m_heap.end(), later);
        m_heap.pop_back();
    }
    return false;
}

bool event_loop::step() {
    if (!settle())
        return false;
    std::pop_heap(m_heap.begin(), m_heap.end(), later);
    event e = std::move(m_heap.back());
    m_heap.pop_back();
    m_queued.erase(e.seq);
    m_now = e.when;
    m_trace.add_u64(static_cast<std::uint64_t>((e.when - m_start).count()));
    m_trace.add_u64(e.tag.kind);
    m_trace.add_u64(e.tag.node);
    m_trace.add_bytes(e.payload);
    ++m_executed;
    e.run(std::move(e.payload));
    return true;
}

bool event_loop::run_until(time_point limit) {
    while (settle()) {
        if (m_heap.front().when > limit)
            return false;
        step();
    }
    return true;
}

} // namespace glasnode::sim
