#include "tests/tests_proto/analysis/synthetic_paths.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace glasnode::proto::synthetic {

std::uint64_t rng::next() {
    // splitmix64
    std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double rng::uniform() {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

double rng::exponential(double mean) {
    return -mean * std::log(1.0 - uniform());
}

namespace {

constexpr double tick_s = 0.005;
constexpr double packet_bits = 12000.0;
constexpr double queue_bdp_fraction = 0.5; // drop-tail buffer, relative to the rate
constexpr double gap_s = 0.5;              // negotiation time between flows

class cross_traffic {
public:
    cross_traffic(const path_config& path, rng& random) : m_path(path), m_random(random) {}

    double fraction_at(double t) {
        if (m_path.cross_mean_on_s <= 0.0) {
            return 0.0;
        }
        while (t >= m_until) {
            m_on = !m_on;
            m_until +=
                m_random.exponential(m_on ? m_path.cross_mean_on_s : m_path.cross_mean_off_s);
            m_fraction =
                m_path.cross_min + (m_path.cross_max - m_path.cross_min) * m_random.uniform();
        }
        return m_on ? m_fraction : 0.0;
    }

private:
    const path_config& m_path;
    rng& m_random;
    bool m_on = false;
    double m_until = 0.0;
    double m_fraction = 0.0;
};

struct tcp_state {
    flow_record* record = nullptr;
    double rate = 0.0;
    bool slow_start = true;
    double recovering_until = -1.0;
    double interval_bits = 0.0;
    double total_bits = 0.0;
};

void halve(tcp_state& f, double t, const path_config& path) {
    if (t < f.recovering_until) {
        return; // one window reduction per round trip, as TCP does
    }
    f.rate = std::max(f.rate / 2.0, packet_bits / path.rtt_s);
    f.slow_start = false;
    f.recovering_until = t + path.rtt_s;
}

// Runs the flows together from `start` for test.flow_s; returns the end time.
double run_window(const std::vector<flow_record*>& flows, double start, const path_config& path,
                  const test_config& test, cross_traffic& cross, rng& random) {
    std::vector<tcp_state> state;
    for (flow_record* r : flows) {
        tcp_state s;
        s.record = r;
        s.rate = 10.0 * packet_bits / path.rtt_s; // initial window of 10 packets
        state.push_back(s);
    }
    const auto ticks = static_cast<long>(std::lround(test.flow_s / tick_s));
    const auto per_interval = static_cast<long>(std::lround(test.interval_s / tick_s));
    std::vector<double> offered(state.size());
    for (long tick = 0; tick < ticks; ++tick) {
        const double t = start + static_cast<double>(tick) * tick_s;
        const double available = path.capacity_bps * (1.0 - cross.fraction_at(t));
        double sum = 0.0;
        for (std::size_t i = 0; i < state.size(); ++i) {
            offered[i] = state[i].rate;
            if (state[i].record->kind == flow_kind::bt && path.bt_cap < 1.0 &&
                state[i].total_bits >= 8.0 * path.bt_cap_after_bytes) {
                const double cap = path.bt_cap * path.capacity_bps;
                if (offered[i] > cap * (1.0 + queue_bdp_fraction)) {
                    halve(state[i], t, path);
                }
                offered[i] = std::min(offered[i], cap);
            }
            sum += offered[i];
        }
        const bool overflow = sum > available * (1.0 + queue_bdp_fraction);
        bool someone_halved = false;
        std::size_t largest = 0;
        for (std::size_t i = 0; i < state.size(); ++i) {
            tcp_state& f = state[i];
            const double delivered = sum > available ? available * offered[i] / sum : offered[i];
            f.interval_bits += delivered * tick_s;
            f.total_bits += delivered * tick_s;
            if (offered[i] > offered[largest]) {
                largest = i;
            }
            bool lost = overflow && random.chance(offered[i] / sum);
            if (path.random_loss > 0.0) {
                const double packets = delivered * tick_s / packet_bits;
                lost = lost || random.chance(1.0 - std::pow(1.0 - path.random_loss, packets));
            }
            if (lost) {
                halve(f, t, path);
                someone_halved = true;
            } else if (f.slow_start) {
                f.rate *= std::exp2(tick_s / path.rtt_s);
            } else {
                f.rate += packet_bits / path.rtt_s * (tick_s / path.rtt_s);
            }
            if ((tick + 1) % per_interval == 0) {
                f.record->interval_bps.push_back(f.interval_bits / test.interval_s);
                f.interval_bits = 0.0;
            }
        }
        if (overflow && !someone_halved) {
            halve(state[largest], t, path);
        }
    }
    for (tcp_state& f : state) {
        f.record->mean_bps = f.total_bits / test.flow_s;
    }
    return start + static_cast<double>(ticks) * tick_s;
}

flow_record new_flow(test_port port, flow_kind kind, std::uint32_t rep, const test_config& test) {
    flow_record f;
    f.dir = direction::download;
    f.port = port;
    f.kind = kind;
    f.repetition = rep;
    f.interval_s = test.interval_s;
    f.end = flow_end::completed;
    f.sender_resets = reset_report{};
    f.receiver_resets = reset_report{};
    return f;
}

template <class T>
void shuffle(std::vector<T>& v, rng& random) {
    for (std::size_t i = v.size(); i > 1; --i) {
        const auto j = static_cast<std::size_t>(random.next() % i);
        std::swap(v[i - 1], v[j]);
    }
}

} // namespace

std::vector<flow_record> run_test(const path_config& path, const test_config& test, rng& random) {
    using slot = std::pair<test_port, flow_kind>;
    // A window is one or two flows started together.
    std::vector<std::vector<slot>> windows_of_rep;
    const bool sequential = test.plan != schedule::concurrent;
    const bool concurrent = test.plan != schedule::sequential;
    if (sequential) {
        for (slot s : {slot{test_port::bt, flow_kind::bt}, slot{test_port::bt, flow_kind::control},
                       slot{test_port::neutral, flow_kind::bt},
                       slot{test_port::neutral, flow_kind::control}}) {
            windows_of_rep.push_back({s});
        }
    }
    if (concurrent) {
        windows_of_rep.push_back(
            {slot{test_port::bt, flow_kind::bt}, slot{test_port::bt, flow_kind::control}});
        windows_of_rep.push_back({slot{test_port::neutral, flow_kind::bt},
                                  slot{test_port::neutral, flow_kind::control}});
        windows_of_rep.push_back({slot{test_port::bt, flow_kind::control},
                                  slot{test_port::neutral, flow_kind::control}});
    }

    std::vector<flow_record> flows;
    flows.reserve(windows_of_rep.size() * 2 * test.repetitions);
    cross_traffic cross(path, random);
    double t = random.uniform() * 3.0; // start at a random phase of the cross traffic
    std::uint32_t group = 0;
    for (std::uint32_t rep = 0; rep < test.repetitions; ++rep) {
        std::vector<std::vector<slot>> windows = windows_of_rep;
        shuffle(windows, random);
        for (const std::vector<slot>& w : windows) {
            const std::size_t first = flows.size();
            for (const slot& s : w) {
                flows.push_back(new_flow(s.first, s.second, rep, test));
                if (w.size() > 1) {
                    flows.back().concurrent_group = group;
                }
            }
            if (w.size() > 1) {
                ++group;
            }
            std::vector<flow_record*> running;
            for (std::size_t i = first; i < flows.size(); ++i) {
                running.push_back(&flows[i]);
            }
            t = run_window(running, t, path, test, cross, random) + gap_s;
        }
    }
    return flows;
}

} // namespace glasnode::proto::synthetic
