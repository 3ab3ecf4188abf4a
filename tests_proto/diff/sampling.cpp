#include "tests_proto/diff/sampling.hpp"

#include <algorithm>
#include <utility>

namespace glasnode::proto::diff {

using std::chrono::microseconds;

sample_plan plan_samples(microseconds duration, microseconds requested,
                         microseconds min_rtt) noexcept {
    duration = std::max(duration, microseconds{0});
    microseconds interval = requested.count() > 0 ? requested : duration / 100;
    interval = std::max({interval, 10 * std::max(min_rtt, microseconds{0}), microseconds{1000}});
    // ceil(duration / max_samples_per_flow): the shortest interval that keeps within the bound.
    const auto max = static_cast<microseconds::rep>(max_samples_per_flow);
    interval = std::max(interval, microseconds{(duration.count() + max - 1) / max});
    const auto count =
        static_cast<std::size_t>((duration.count() + interval.count() - 1) / interval.count());
    return {interval, std::clamp<std::size_t>(count, 1, max_samples_per_flow)};
}

void coarsen_samples(std::vector<std::uint64_t>& samples, microseconds& interval,
                     microseconds min_rtt) {
    if (min_rtt.count() <= 0 || interval.count() <= 0 || samples.empty())
        return;
    const auto wanted = 10 * min_rtt.count();
    const auto factor =
        static_cast<std::size_t>((wanted + interval.count() - 1) / interval.count());
    if (factor <= 1)
        return;
    std::vector<std::uint64_t> merged((samples.size() + factor - 1) / factor, 0);
    for (std::size_t i = 0; i < samples.size(); ++i)
        merged[i / factor] += samples[i];
    samples = std::move(merged);
    interval *= static_cast<microseconds::rep>(factor);
}

std::size_t sample_index(const sample_plan& plan, microseconds since) noexcept {
    if (since.count() <= 0 || plan.interval.count() <= 0)
        return 0;
    const auto idx = static_cast<std::size_t>(since / plan.interval);
    return std::min(idx, plan.count - 1);
}

flow_end leech_eof_end(bool window_over) noexcept {
    return window_over ? flow_end::completed : flow_end::eof_early;
}

flow_end seed_eof_end(bool peer_interested, microseconds served, microseconds duration) noexcept {
    if (!peer_interested || served < duration - duration / 10)
        return flow_end::eof_early;
    return flow_end::completed;
}

bool replaces_end(std::optional<flow_end> recorded, flow_end next) noexcept {
    if (!recorded)
        return true;
    return next == flow_end::reset_received &&
           (*recorded == flow_end::eof_early || *recorded == flow_end::completed);
}

} // namespace glasnode::proto::diff
