#include "tests_proto/diff/schedule.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "tests_proto/analysis/rules.hpp"
#include "tests_proto/analysis/statistics.hpp"

namespace glasnode::proto::diff {
namespace {

// Fisher-Yates with the injected randomness (std::shuffle would need a URBG adaptor and its
// results differ between standard libraries).
template <class T>
void shuffle(std::vector<T>& v, random_source& rng) {
    for (std::size_t i = v.size(); i > 1; --i) {
        const auto j = static_cast<std::size_t>(rng.uniform(i));
        std::swap(v[i - 1], v[j]);
    }
}

// A slot is one sequential flow or one concurrent group, before indices are assigned.
struct flow_shape {
    direction dir;
    test_port port;
    flow_kind kind;
};
using slot = std::vector<flow_shape>;

std::vector<slot> sequential_slots(direction dir, std::span<const test_port> ports,
                                   random_source& rng) {
    std::vector<std::vector<slot>> pairs;
    for (test_port port : ports) {
        std::vector<slot> pair{{{dir, port, flow_kind::bt}}, {{dir, port, flow_kind::control}}};
        if (rng.uniform(2) == 1)
            std::swap(pair[0], pair[1]);
        pairs.push_back(std::move(pair));
    }
    shuffle(pairs, rng);
    std::vector<slot> out;
    for (auto& p : pairs)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::vector<slot> concurrent_slots(direction dir, std::span<const test_port> ports, bool port_pair,
                                   random_source& rng) {
    std::vector<slot> out;
    for (test_port port : ports) {
        slot s{{dir, port, flow_kind::bt}, {dir, port, flow_kind::control}};
        if (rng.uniform(2) == 1)
            std::swap(s[0], s[1]);
        out.push_back(std::move(s));
    }
    if (port_pair) {
        slot s{{dir, test_port::bt, flow_kind::control},
               {dir, test_port::neutral, flow_kind::control}};
        if (rng.uniform(2) == 1)
            std::swap(s[0], s[1]);
        out.push_back(std::move(s));
    }
    shuffle(out, rng);
    return out;
}

struct numbering {
    std::uint16_t next_index;
    std::uint16_t next_group;
};

void emit(std::vector<flow_spec>& out, const std::vector<slot>& slots,
          std::chrono::milliseconds duration, numbering& n) {
    for (const slot& s : slots) {
        for (const flow_shape& f : s) {
            flow_spec p;
            p.index = n.next_index++;
            p.dir = f.dir;
            p.port = f.port;
            p.kind = f.kind;
            p.group = n.next_group;
            p.duration_ms = static_cast<std::uint32_t>(duration.count());
            out.push_back(p);
        }
        ++n.next_group;
    }
}

// Interleaves the sequential and concurrent slots of one repetition in a random order while
// keeping each list's own order (BT/control alternation stays intact).
std::vector<slot> interleave(std::vector<slot> a, std::vector<slot> b, random_source& rng) {
    std::vector<slot> out;
    std::size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        const std::size_t left_a = a.size() - i, left_b = b.size() - j;
        if (left_b == 0 || (left_a > 0 && rng.uniform(left_a + left_b) < left_a))
            out.push_back(std::move(a[i++]));
        else
            out.push_back(std::move(b[j++]));
    }
    return out;
}

constexpr test_port both_ports[] = {test_port::bt, test_port::neutral};

} // namespace

std::vector<flow_spec> make_schedule(const schedule_params& params, random_source& rng,
                                     std::uint16_t first_index, std::uint16_t first_group) {
    std::vector<direction> dirs;
    if (params.upload)
        dirs.push_back(direction::upload);
    if (params.download)
        dirs.push_back(direction::download);
    std::vector<flow_spec> out;
    numbering n{first_index, first_group};
    const std::uint32_t reps =
        std::max(params.sequential_repetitions, params.concurrent_repetitions);
    for (std::uint32_t rep = 0; rep < reps; ++rep) {
        shuffle(dirs, rng);
        std::vector<slot> seq, conc;
        if (rep == 0 && params.sequential_repetitions > 0) {
            // The clean references: control on every (direction, port) before any BT flow,
            // directions alternating, the neutral port's first: the automatic pairing decides
            // on the first two, and a throttle of the BT port in one direction must not make an
            // asymmetric path look symmetric. Then this repetition's BT flows, in a random order.
            std::vector<slot> references;
            for (test_port port : {test_port::neutral, test_port::bt})
                for (direction d : dirs)
                    references.push_back({{d, port, flow_kind::control}});
            emit(out, references, params.flow_duration, n);
            for (direction d : dirs)
                for (test_port port : both_ports)
                    seq.push_back({{d, port, flow_kind::bt}});
            shuffle(seq, rng);
        }
        for (direction d : dirs) {
            if (rep > 0 && rep < params.sequential_repetitions) {
                auto s = sequential_slots(d, both_ports, rng);
                seq.insert(seq.end(), s.begin(), s.end());
            }
            if (rep < params.concurrent_repetitions) {
                auto c = concurrent_slots(d, both_ports, true, rng);
                conc.insert(conc.end(), c.begin(), c.end());
            }
        }
        emit(out, interleave(std::move(seq), std::move(conc), rng), params.flow_duration, n);
    }
    if (params.only_kind)
        std::erase_if(out, [&](const flow_spec& f) { return f.kind != *params.only_kind; });
    return out;
}

bool holds(std::span<const comparison_key> keys, const comparison_key& k) noexcept {
    return std::find(keys.begin(), keys.end(), k) != keys.end();
}

std::vector<flow_spec> make_confirmation(std::span<const comparison_key> which,
                                         const schedule_params& params, random_source& rng,
                                         std::uint16_t first_index, std::uint16_t first_group,
                                         std::span<const comparison_key> controls_only) {
    std::vector<flow_spec> out;
    numbering n{first_index, first_group};
    const std::uint32_t reps =
        std::max(params.sequential_repetitions, params.concurrent_repetitions);
    for (std::uint32_t rep = 0; rep < reps; ++rep) {
        // Units of sequential slots kept together (a BT/control pair, or the neutral port's
        // control flow that the BT port's port comparison needs), shuffled as a whole.
        std::vector<std::vector<slot>> units;
        std::vector<slot> conc;
        for (const comparison_key& k : which) {
            const test_port port[] = {k.port};
            const bool controls = k.port == test_port::bt && holds(controls_only, k);
            if (rep < params.sequential_repetitions) {
                if (controls)
                    units.push_back({{{k.dir, test_port::bt, flow_kind::control}}});
                else
                    units.push_back(sequential_slots(k.dir, port, rng));
                if (k.port == test_port::bt && !holds(which, {k.dir, test_port::neutral}))
                    units.push_back({{{k.dir, test_port::neutral, flow_kind::control}}});
            }
            if (rep < params.concurrent_repetitions) {
                auto c = concurrent_slots(k.dir,
                                          controls ? std::span<const test_port>{}
                                                   : std::span<const test_port>{port},
                                          k.port == test_port::bt, rng);
                conc.insert(conc.end(), c.begin(), c.end());
            }
        }
        shuffle(units, rng);
        std::vector<slot> seq;
        for (auto& u : units)
            seq.insert(seq.end(), u.begin(), u.end());
        emit(out, interleave(std::move(seq), std::move(conc), rng), params.flow_duration, n);
    }
    return out;
}

std::optional<double> steady_fraction(std::span<const std::uint64_t> samples) {
    if (samples.size() < steady_min_samples)
        return std::nullopt;
    const std::vector<double> body(
        samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 10), samples.end() - 1);
    // The peak as the peak rule takes it (verdict.cpp).
    const double peak = quantile(body, analysis_settings{}.peak_quantile);
    if (peak <= 0)
        return std::nullopt;
    const auto steady = std::count_if(body.begin(), body.end(),
                                      [&](double x) { return x >= steady_peak_share * peak; });
    return static_cast<double>(steady) / static_cast<double>(body.size());
}

std::chrono::milliseconds rerun_flow_duration(const schedule_params& params,
                                              std::chrono::milliseconds elapsed,
                                              std::chrono::milliseconds per_slot,
                                              std::size_t slots) noexcept {
    using std::chrono::milliseconds;
    const milliseconds full = params.flow_duration;
    if (params.time_budget.count() <= 0 || slots == 0)
        return full;
    const auto n = static_cast<milliseconds::rep>(slots);
    const milliseconds left =
        params.time_budget - elapsed - rerun_reserve - n * std::max(per_slot, milliseconds{0});
    const milliseconds fits = left / n;
    if (fits >= full)
        return full;
    return std::max(fits, std::min(full, min_rerun_flow_duration));
}

std::uint64_t flow_byte_bound(std::uint32_t duration_ms, std::uint64_t max_rate_bps) noexcept {
    // Payload at the cap for the window, plus 15%: the kernel's pacing overshoots its cap a
    // little (measured on loopback, 2.5 s flows at 20 Mbit/s: payload at 20.7-21.0 Mbit/s,
    // socket bytes 7% above the cap's), and the peer-wire framing adds under 0.2%; plus 64 KiB
    // for the handshake and the graceful end. The agent counts socket bytes, not TCP/IP
    // headers.
    const double payload = static_cast<double>(max_rate_bps) / 8.0 * duration_ms / 1000.0;
    return static_cast<std::uint64_t>(payload * 1.15) + 65'536;
}

fitted_confirmation fit_confirmation(std::span<const comparison_key> which,
                                     const schedule_params& params, std::uint64_t used_bytes,
                                     std::span<const shape_bytes> moved,
                                     std::span<const comparison_key> controls_only) {
    fitted_confirmation out;
    if (params.max_test_bytes == 0) {
        out.rerun.assign(which.begin(), which.end());
        return out;
    }
    const std::uint64_t left =
        params.max_test_bytes > used_bytes ? params.max_test_bytes - used_bytes : 0;
    auto expected = [&](const flow_spec& f) -> std::uint64_t {
        const std::uint64_t bound = params.max_rate_bps > 0
                                        ? flow_byte_bound(f.duration_ms, params.max_rate_bps)
                                        : std::numeric_limits<std::uint64_t>::max();
        std::optional<std::uint64_t> most;
        for (const shape_bytes& m : moved)
            if (m.dir == f.dir && m.port == f.port && m.kind == f.kind)
                most = std::max(most.value_or(0), m.bytes);
        if (!most)
            return bound;
        return std::min(bound, *most + *most / 2);
    };
    auto cost = [&](std::span<const comparison_key> keys) {
        seeded_random scratch(0); // only the flows' shapes and lengths matter, not their order
        std::uint64_t bytes = 0;
        for (const flow_spec& f : make_confirmation(keys, params, scratch, 0, 0, controls_only)) {
            const std::uint64_t e = expected(f);
            bytes = e > std::numeric_limits<std::uint64_t>::max() - bytes
                        ? std::numeric_limits<std::uint64_t>::max()
                        : bytes + e;
        }
        return bytes;
    };
    for (const comparison_key& k : which) {
        out.rerun.push_back(k);
        if (cost(out.rerun) > left) {
            out.rerun.pop_back();
            out.skipped.push_back(k);
        }
    }
    return out;
}

std::string_view to_string(direction_pairing p) noexcept {
    switch (p) {
    case direction_pairing::apart:
        return "apart";
    case direction_pairing::together:
        return "together";
    case direction_pairing::automatic:
        return "auto";
    }
    return "auto";
}

std::optional<direction_pairing> parse_direction_pairing(std::string_view s) noexcept {
    for (direction_pairing p :
         {direction_pairing::apart, direction_pairing::together, direction_pairing::automatic})
        if (s == to_string(p))
            return p;
    return std::nullopt;
}

bool paths_allow_pairing(double upload_bps, double download_bps) noexcept {
    const double narrow = std::min(upload_bps, download_bps);
    const double wide = std::max(upload_bps, download_bps);
    return narrow > 0.0 && narrow >= together_min_rate_ratio * wide;
}

std::uint64_t paired_upload_pace_bps(double upload_bps, double download_bps) noexcept {
    if (!(upload_bps > 0.0) || !(download_bps > upload_bps) ||
        paths_allow_pairing(upload_bps, download_bps))
        return 0;
    const double pace =
        (paired_uplink_use * upload_bps - paired_ack_share * download_bps) / paired_header_overhead;
    if (!(pace >= paired_min_pace_share * upload_bps))
        return 0;
    return static_cast<std::uint64_t>(pace);
}

std::size_t join_directions(std::vector<flow_spec>& schedule, std::uint16_t from_group) {
    std::map<std::uint16_t, std::size_t> size;
    for (const flow_spec& f : schedule)
        ++size[f.group];
    std::vector<bool> taken(schedule.size(), false);
    std::size_t moved = 0;
    for (std::size_t i = 0; i < schedule.size(); ++i) {
        const flow_spec& a = schedule[i];
        if (taken[i] || a.group < from_group || size[a.group] != 1)
            continue;
        for (std::size_t j = i + 1; j < schedule.size(); ++j) {
            flow_spec& b = schedule[j];
            if (taken[j] || b.group <= a.group || size[b.group] != 1)
                continue;
            if (b.dir != a.dir && b.port == a.port && b.kind == a.kind) {
                --size[b.group];
                b.group = a.group;
                ++size[a.group];
                taken[i] = taken[j] = true;
                ++moved;
                break;
            }
        }
    }
    return moved;
}

std::vector<std::vector<flow_spec>> slots_of(std::span<const flow_spec> schedule) {
    std::map<std::uint16_t, std::vector<flow_spec>> by_group;
    for (const flow_spec& f : schedule)
        by_group[f.group].push_back(f);
    std::vector<std::vector<flow_spec>> out;
    for (auto& [group, flows] : by_group)
        out.push_back(std::move(flows));
    return out;
}

std::chrono::milliseconds transfer_time(std::span<const flow_spec> schedule) {
    std::chrono::milliseconds total{0};
    for (const auto& s : slots_of(schedule)) {
        std::uint32_t longest = 0;
        for (const auto& f : s)
            longest = std::max(longest, f.duration_ms);
        total += std::chrono::milliseconds(longest);
    }
    return total;
}

} // namespace glasnode::proto::diff
