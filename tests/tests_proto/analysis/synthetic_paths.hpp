// A seeded flow-level model of a differential test on one bottleneck, producing the flow
// records the analysis judges: TCP-like flows (slow start, additive increase, halving on
// loss), a drop-tail queue, random loss, non-responsive on/off cross traffic, and a shaper that
// caps BitTorrent payload at a fraction of the link. Test-only: it stands in for the flow
// engine to measure false-positive and detection rates of the rules.
//
// Deterministic: the same seed and configuration give the same flows on every platform
// (own splitmix64 generator, no std:: distributions).
#pragma once

#include <cstdint>
#include <vector>

#include "tests_proto/analysis/verdict.hpp"

namespace glasnode::proto::synthetic {

class rng {
public:
    explicit rng(std::uint64_t seed) : m_state(seed) {}
    std::uint64_t next();
    double uniform();                // [0, 1)
    double exponential(double mean); // mean > 0
    bool chance(double p) { return uniform() < p; }

private:
    std::uint64_t m_state;
};

struct path_config {
    double capacity_bps = 40e6;
    double rtt_s = 0.02;
    double random_loss = 0.0; // per-packet loss probability
    // On/off cross traffic: mean on/off durations; while on it takes a fraction of the link
    // drawn uniformly in [cross_min, cross_max] per burst. Off when cross_mean_on_s == 0.
    double cross_mean_on_s = 0.0;
    double cross_mean_off_s = 0.0;
    double cross_min = 0.3;
    double cross_max = 0.8;
    // BitTorrent payload (any port) capped at this fraction of the link; 1 = neutral.
    double bt_cap = 1.0;
    // The cap holds only once a flow has carried this many payload bytes (Wehe's delayed
    // throttling); 0 = from the first byte.
    double bt_cap_after_bytes = 0.0;
};

// `p` with BitTorrent payload capped at `cap` of the link, from the first byte or, with
// after_bytes > 0, once a flow has carried that many bytes.
inline path_config capped(path_config p, double cap, double after_bytes = 0.0) {
    p.bt_cap = cap;
    p.bt_cap_after_bytes = after_bytes;
    return p;
}

enum class schedule {
    sequential, // R repetitions of the 4 flows, one at a time, in random order
    concurrent, // R repetitions of 3 pairs: (BT, control) on each port, (control, control)
    mixed,      // both of the above, R each
};

struct test_config {
    schedule plan = schedule::sequential;
    std::uint32_t repetitions = 3;
    double flow_s = 5.0;
    double interval_s = 0.05;
};

// One download-direction test on the path (both ports).
std::vector<flow_record> run_test(const path_config& path, const test_config& test, rng& random);

} // namespace glasnode::proto::synthetic
