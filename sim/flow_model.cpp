#include "sim/flow_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "tests_proto/diff/sampling.hpp"

namespace glasnode::sim {

using namespace std::chrono_literals;
using proto::direction;
using proto::flow_end;
using proto::flow_role;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

bool path_policy::matches(proto::flow_kind kind, direction dir,
                          std::uint16_t to_port) const noexcept {
    if (action == policy_action::none)
        return false;
    if (!(dir == direction::download ? download : upload))
        return false;
    if (remember_endpoints && std::find(remembered_ports.begin(), remembered_ports.end(),
                                        to_port) != remembered_ports.end())
        return true;
    return match == policy_match::content ? kind == proto::flow_kind::bt : to_port == port;
}

namespace {

// Peer-wire framing around the payload (tests_proto/diff/bt_wire.hpp): the handshake, one
// bitfield (1 piece), interested and unchoke, a 17-byte request and a 13-byte piece header per
// 16 KiB block.
constexpr std::uint64_t block_bytes = 16 * 1024;
constexpr std::uint64_t handshake_bytes = 68;
constexpr std::uint64_t bitfield_bytes = 6;
constexpr std::uint64_t state_message_bytes = 5;
constexpr std::uint64_t request_bytes = 17;
constexpr std::uint64_t piece_header_bytes = 13;
// Rates change only at the boundaries every step ends at (sample, noise, window, slow-start
// doubling, byte thresholds, flows starting and stopping), so the integration is exact between
// them; this bound only keeps a step from spanning a whole long flow.
constexpr nanoseconds max_step = 100ms;
// A link never drops below this fraction of its rate under noise (a draw of 1 + sd x N(0,1) can
// be negative; a path that carries nothing for an interval is a block, not noise).
constexpr double min_noise_factor = 0.05;
constexpr double infinite_rate = std::numeric_limits<double>::infinity();

double seconds(nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

std::uint64_t micros(nanoseconds d) {
    return static_cast<std::uint64_t>(
        std::max<std::int64_t>(std::chrono::duration_cast<microseconds>(d).count(), 0));
}

double uniform01(random_source& r) {
    return static_cast<double>(r.next_u64() >> 11) * 0x1.0p-53;
}

// Box-Muller; the sine half is dropped so that each draw takes exactly two words.
double standard_normal(random_source& r) {
    const double u1 = 1.0 - uniform01(r); // (0, 1]: log is finite
    const double u2 = uniform01(r);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// The noise of one direction's link: one factor per interval since the slot's windows opened,
// drawn in interval order as time reaches them.
class link_noise {
public:
    link_noise(double sd, nanoseconds interval, random_source& random)
        : m_sd(sd), m_interval(std::max(interval, nanoseconds{1})), m_random(random) {}

    double factor(nanoseconds since_open) {
        const auto bucket = static_cast<std::size_t>(
            std::max<nanoseconds::rep>(since_open.count() / m_interval.count(), 0));
        while (m_factors.size() <= bucket) {
            m_factors.push_back(
                m_sd > 0.0 ? std::max(min_noise_factor, 1.0 + m_sd * standard_normal(m_random))
                           : 1.0);
        }
        return m_factors[bucket];
    }
    nanoseconds next_boundary(nanoseconds since_open) const {
        const auto bucket = std::max<nanoseconds::rep>(since_open.count() / m_interval.count(), 0);
        return (bucket + 1) * m_interval;
    }

private:
    double m_sd;
    nanoseconds m_interval;
    random_source& m_random;
    std::vector<double> m_factors;
};

// One flow past its handshake, moving payload from the seed to the leech. Times are offsets
// from the slot's start, on the leech's clock (when bytes arrive).
struct transfer {
    std::size_t flow = 0; // index into the slot's flows
    direction dir = direction::download;
    bool throttled_policy = false;
    bool reset_policy = false;
    bool stalled = false;
    nanoseconds window_start{0};
    nanoseconds window_end{0};
    nanoseconds data_start{0};
    nanoseconds stop{0}; // no byte arrives from then on
    proto::diff::sample_plan plan;
    std::vector<std::uint64_t> samples;
    double cwnd = 0.0; // bytes
    bool slow_start = true;
    nanoseconds next_doubling{0};
    double delivered = 0.0; // payload bytes, fractional
    std::uint64_t counted = 0;
    std::optional<nanoseconds> reset_at;
    double rate = 0.0;              // bytes/s in the current step
    std::uint64_t max_rate_bps = 0; // the sender's pace (0: none)
};

bool active_at(const transfer& x, nanoseconds t) {
    return t >= x.data_start && t < x.stop;
}

// The byte counts the real ends would report on the wire around `payload` bytes of pieces.
struct wire_counts {
    std::uint64_t seed_sent, seed_received, leech_sent, leech_received;
};
wire_counts wire_bytes(std::uint64_t payload) {
    const std::uint64_t blocks = (payload + block_bytes - 1) / block_bytes;
    const std::uint64_t seed_out = handshake_bytes + bitfield_bytes + state_message_bytes +
                                   payload + blocks * piece_header_bytes;
    const std::uint64_t leech_out = handshake_bytes + state_message_bytes + blocks * request_bytes;
    return {seed_out, leech_out, leech_out, seed_out};
}

struct claim {
    double demand = 0.0; // bytes/s the flow could use (infinite once out of slow start, uncapped)
    transfer* flow = nullptr;
};

// Max-min fair shares of `capacity` (bytes/s) among the claims, which are reordered.
void share(std::vector<claim>& claims, double capacity) {
    // Insertion sort: a slot holds a few flows at most, and ties keep the slot's order.
    for (std::size_t i = 1; i < claims.size(); ++i) {
        const claim c = claims[i];
        std::size_t j = i;
        for (; j > 0 && claims[j - 1].demand > c.demand; --j)
            claims[j] = claims[j - 1];
        claims[j] = c;
    }
    double left = capacity;
    for (std::size_t k = 0; k < claims.size(); ++k) {
        const double fair = left / static_cast<double>(claims.size() - k);
        const double give = std::min(claims[k].demand, fair);
        claims[k].flow->rate = give;
        left -= give;
    }
}

// Integrates every transfer of the slot from the first byte to the last.
void run_transfers(std::vector<transfer>& xs, const path_model& path, const path_policy& policy,
                   random_source& random) {
    if (xs.empty())
        return;
    const double rtt_s = seconds(path.rtt);
    const nanoseconds opened = xs.front().window_start; // the same for every flow of a slot
    nanoseconds noise_interval[2]{0ns, 0ns};
    for (const transfer& x : xs) {
        auto& n = noise_interval[x.dir == direction::download ? 0 : 1];
        n = std::max(n, nanoseconds(x.plan.interval));
    }
    link_noise noise[2]{link_noise(path.noise, noise_interval[0], random),
                        link_noise(path.noise, noise_interval[1], random)};
    const double link_rate[2]{path.download_bps / 8.0, path.upload_bps / 8.0};

    nanoseconds t = xs.front().data_start;
    nanoseconds last = t;
    for (const transfer& x : xs) {
        t = std::min(t, x.data_start);
        last = std::max(last, x.stop);
    }

    std::vector<claim> claims;
    claims.reserve(xs.size());
    while (t < last) {
        // A forged reset lands once the connection has carried its bytes.
        for (transfer& x : xs) {
            if (active_at(x, t) && x.reset_policy &&
                x.delivered + 0.5 >= static_cast<double>(policy.after_bytes)) {
                x.reset_at = t;
                x.stop = t;
            }
        }
        nanoseconds next = t + max_step;
        for (transfer& x : xs)
            x.rate = 0.0;
        for (int d = 0; d < 2; ++d) {
            claims.clear();
            for (transfer& x : xs) {
                if ((x.dir == direction::download ? 0 : 1) != d || !active_at(x, t))
                    continue;
                double want = x.slow_start ? x.cwnd / rtt_s : infinite_rate;
                const bool capped = x.throttled_policy &&
                                    x.delivered + 0.5 >= static_cast<double>(policy.after_bytes);
                if (capped)
                    want = std::min(want, policy.fraction * link_rate[d]);
                if (x.max_rate_bps > 0)
                    want = std::min(want, static_cast<double>(x.max_rate_bps) / 8.0);
                claims.push_back({want, &x});
            }
            if (claims.empty())
                continue;
            share(claims, link_rate[d] * noise[d].factor(t - opened));
            next = std::min(next, opened + noise[d].next_boundary(t - opened));
        }
        for (transfer& x : xs) {
            if (!active_at(x, t))
                continue;
            // A window larger than what the path gives: the bottleneck queue overflows and TCP
            // leaves slow start.
            if (x.slow_start && x.cwnd / rtt_s > x.rate * (1.0 + 1e-9))
                x.slow_start = false;
            if (x.slow_start)
                next = std::min(next, x.next_doubling);
            if (t < x.window_end) {
                const std::size_t k = proto::diff::sample_index(
                    x.plan, std::chrono::duration_cast<microseconds>(t - x.window_start));
                next = std::min(next, x.window_start + nanoseconds(x.plan.interval) *
                                                           static_cast<std::int64_t>(k + 1));
                next = std::min(next, x.window_end);
            }
            next = std::min(next, x.stop);
            const bool threshold_ahead =
                (x.reset_policy || x.throttled_policy) &&
                x.delivered + 0.5 < static_cast<double>(policy.after_bytes);
            if (threshold_ahead && x.rate > 0.0) {
                const double left_s =
                    (static_cast<double>(policy.after_bytes) - x.delivered) / x.rate;
                next = std::min(
                    next, t + std::max(nanoseconds{1}, nanoseconds(static_cast<nanoseconds::rep>(
                                                           std::ceil(left_s * 1e9)))));
            }
        }
        for (const transfer& x : xs) {
            if (x.data_start > t)
                next = std::min(next, x.data_start);
        }
        next = std::max(next, t + nanoseconds{1});
        const double dt = seconds(next - t);
        for (transfer& x : xs) {
            if (!active_at(x, t))
                continue;
            x.delivered += x.rate * dt;
            const auto now_counted = static_cast<std::uint64_t>(std::floor(x.delivered));
            const std::uint64_t moved = now_counted - x.counted;
            x.counted = now_counted;
            if (t < x.window_end && t >= x.window_start) {
                x.samples[proto::diff::sample_index(
                    x.plan, std::chrono::duration_cast<microseconds>(t - x.window_start))] += moved;
            }
            while (x.slow_start && next >= x.next_doubling) {
                x.cwnd *= 2.0;
                x.next_doubling += path.rtt;
            }
        }
        t = next;
    }
}

flow_measurement blank(const proto::negotiation::flow_to_run& f, flow_role role) {
    flow_measurement m;
    m.index = f.spec.index;
    m.role = role;
    return m;
}

} // namespace

flow_measurement refused_at_handshake(const proto::negotiation::flow_to_run& flow,
                                      const path_model& path) {
    flow_measurement m = blank(flow, flow.role);
    m.end = flow_end::refused;
    m.connect_time_us = micros(path.rtt);
    m.bytes_sent = handshake_bytes;
    m.min_rtt_us = micros(path.rtt);
    return m;
}

std::vector<modelled_flow> model_slot(std::span<const proto::negotiation::flow_to_run> flows,
                                      const path_model& path, const path_policy& policy,
                                      const flow_timeouts& timeouts, random_source& noise,
                                      std::uint64_t max_rate_bps) {
    const nanoseconds rtt = path.rtt;
    std::vector<modelled_flow> out(flows.size());
    std::vector<transfer> xs;
    for (std::size_t i = 0; i < flows.size(); ++i) {
        const auto& f = flows[i];
        modelled_flow& m = out[i];
        m.agent = blank(f, f.role);
        const bool matched = policy.matches(f.spec.kind, f.spec.dir, f.port);
        const bool blocked = matched && policy.action == policy_action::block;
        if (blocked && policy.block == block_mode::drop) {
            m.agent.end = flow_end::connect_timeout;
            m.agent_done = timeouts.connect;
            continue;
        }
        if (blocked && policy.block == block_mode::reject) {
            m.agent.end = flow_end::connect_failed;
            m.agent_done = rtt;
            continue;
        }
        m.agent.connect_time_us = micros(rtt);
        if (matched && policy.action == policy_action::reset && policy.first_packet) {
            m.agent.end = flow_end::reset_received;
            m.agent.resets_received = 1;
            m.agent.bytes_sent = handshake_bytes;
            m.agent.min_rtt_us = micros(rtt);
            m.agent_done = rtt + rtt / 2;
            m.unidentified_at = rtt + rtt / 2;
            m.unidentified_resets = 1;
            continue;
        }
        m.handshake_at = rtt + rtt / 2;
        m.provider = blank(f, proto::provider_role(f.spec.dir));

        transfer x;
        x.flow = i;
        x.dir = f.spec.dir;
        x.throttled_policy = matched && policy.action == policy_action::throttle;
        x.reset_policy = matched && policy.action == policy_action::reset;
        x.stalled = blocked && policy.block == block_mode::stall;
        x.window_start = 2 * rtt;
        x.window_end = x.window_start + std::chrono::milliseconds(f.spec.duration_ms);
        x.data_start = x.window_start + rtt;
        // A stalled flow never moves a payload byte.
        x.stop = x.stalled ? x.data_start : x.window_end + rtt;
        x.plan = proto::diff::plan_samples(
            std::chrono::duration_cast<microseconds>(x.window_end - x.window_start), 0us, path.rtt);
        x.samples.assign(x.plan.count, 0);
        x.cwnd = static_cast<double>(path.initial_window) * path.mss;
        x.next_doubling = x.data_start + rtt;
        // The agent's seeds pace at the flow's own rate (a paired upload's may be lower than
        // the test's cap), the provider's at the cap.
        x.max_rate_bps =
            f.role == flow_role::seed && f.max_rate_bps > 0 ? f.max_rate_bps : max_rate_bps;
        xs.push_back(std::move(x));
    }

    run_transfers(xs, path, policy, noise);

    for (transfer& x : xs) {
        const auto& f = flows[x.flow];
        modelled_flow& m = out[x.flow];
        const bool agent_leech = f.role == flow_role::leech;
        flow_measurement& leech = agent_leech ? m.agent : m.provider;
        flow_measurement& seed = agent_leech ? m.provider : m.agent;
        const nanoseconds duration = x.window_end - x.window_start;
        const nanoseconds seed_start = x.window_start + rtt / 2;
        nanoseconds leech_done = x.window_end + rtt;
        nanoseconds seed_done = x.window_end + rtt / 2;
        if (x.stalled) {
            leech.end = seed.end = flow_end::stalled;
            leech_done = seed_done = x.window_start + timeouts.stall;
        } else if (x.reset_at) {
            leech.end = seed.end = flow_end::reset_received;
            leech.resets_received = seed.resets_received = 1;
            leech_done = seed_done = *x.reset_at;
        } else {
            leech.end = proto::diff::leech_eof_end(true);
            seed.end = proto::diff::seed_eof_end(
                true, std::chrono::duration_cast<microseconds>(seed_done - seed_start),
                std::chrono::duration_cast<microseconds>(duration));
        }
        leech.duration_us = micros(std::min(leech_done, x.window_end) - x.window_start);
        leech.sample_interval_us = static_cast<std::uint64_t>(x.plan.interval.count());
        leech.samples = std::move(x.samples);
        seed.duration_us = micros(std::max(seed_done - seed_start, nanoseconds{0}));
        const wire_counts w = wire_bytes(x.counted);
        leech.payload_bytes = seed.payload_bytes = x.counted;
        seed.bytes_sent = w.seed_sent;
        seed.bytes_received = w.seed_received;
        leech.bytes_sent = w.leech_sent;
        leech.bytes_received = w.leech_received;
        leech.min_rtt_us = seed.min_rtt_us = micros(rtt);
        m.agent_done = agent_leech ? leech_done : seed_done;
        m.provider_done = agent_leech ? seed_done : leech_done;
    }
    return out;
}

} // namespace glasnode::sim
