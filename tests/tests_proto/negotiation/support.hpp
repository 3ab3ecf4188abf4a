// Helpers shared by the negotiation tests: a fake clock origin, schedules, and accessors that
// pick effects out of a provider's output.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/identity/random.hpp"
#include "tests_proto/negotiation/agent.hpp"
#include "tests_proto/negotiation/provider.hpp"

namespace glasnode::proto::negotiation::testing {

using namespace std::chrono_literals;

// An arbitrary origin for fake time: the provider never reads the clock, so any value works.
inline const time_point t0 = time_point{} + 1000h;

inline flow_spec spec(std::uint16_t index, direction dir, test_port port, flow_kind kind,
                      std::uint16_t group, std::uint32_t duration_ms) {
    return flow_spec{index, dir, port, kind, group, duration_ms};
}

// Four flows: download BT+control concurrently on the BT port (group 0), then upload BT and
// control on the neutral port one after the other (groups 1 and 2).
inline std::vector<flow_spec> small_schedule() {
    return {
        spec(0, direction::download, test_port::bt, flow_kind::bt, 0, 2000),
        spec(1, direction::download, test_port::bt, flow_kind::control, 0, 3000),
        spec(2, direction::upload, test_port::neutral, flow_kind::bt, 1, 1000),
        spec(3, direction::upload, test_port::neutral, flow_kind::control, 2, 1500),
    };
}

// Wall time of small_schedule() with the default 2 s group margin.
inline constexpr std::chrono::milliseconds small_schedule_wall{(3000 + 2000) + (1000 + 2000) +
                                                               (1500 + 2000)};

inline negotiate negotiate_of(std::vector<flow_spec> schedule) {
    negotiate m;
    m.schedule = std::move(schedule);
    return m;
}

// The messages sent to `session`, decoded as provider replies.
inline std::vector<provider_reply> replies_to(const effects& out, session_id session) {
    std::vector<provider_reply> r;
    for (const effect& e : out) {
        const auto* s = std::get_if<send_message>(&e);
        if (s == nullptr || s->session != session)
            continue;
        auto reply = decode_provider_reply(s->message);
        EXPECT_TRUE(reply.ok()) << (reply.ok() ? "" : reply.err().describe());
        if (reply)
            r.push_back(std::move(*reply));
    }
    return r;
}

inline std::size_t sends_to(const effects& out, session_id session) {
    std::size_t n = 0;
    for (const effect& e : out) {
        const auto* s = std::get_if<send_message>(&e);
        if (s != nullptr && s->session == session)
            ++n;
    }
    return n;
}

template <class E>
std::vector<E> events_of(const effects& out) {
    std::vector<E> r;
    for (const effect& e : out) {
        if (const auto* x = std::get_if<E>(&e))
            r.push_back(*x);
    }
    return r;
}

// The single reply of type M to `session` (a test failure if there is not exactly one reply).
template <class M>
std::optional<M> only_reply(const effects& out, session_id session) {
    const auto r = replies_to(out, session);
    EXPECT_EQ(r.size(), 1u) << "replies to session " << session;
    if (r.size() != 1)
        return std::nullopt;
    const auto* m = std::get_if<M>(&r.front());
    EXPECT_NE(m, nullptr) << "reply of another type (index " << r.front().index() << ")";
    if (m == nullptr)
        return std::nullopt;
    return *m;
}

// A random_source that hands out 0x01, 0x02, 0x03, ... so tests can predict every token.
class counting_random final : public random_source {
public:
    void fill(std::span<std::uint8_t> out) override {
        for (std::uint8_t& b : out)
            b = ++m_next;
    }

private:
    std::uint8_t m_next = 0;
};

// A broken source that always returns the same bytes.
class constant_random final : public random_source {
public:
    void fill(std::span<std::uint8_t> out) override {
        for (std::uint8_t& b : out)
            b = 0x42;
    }
};

} // namespace glasnode::proto::negotiation::testing
