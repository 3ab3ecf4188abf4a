#include "tests_proto/negotiation/schedule.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include <sodium.h>

namespace glasnode::proto::negotiation {

namespace {

constexpr std::string_view flow_token_domain = "glasnode/diff/flow";

std::string flow_label(const flow_spec& f) {
    return "flow " + std::to_string(f.index);
}

} // namespace

std::chrono::milliseconds schedule_wall_time(std::span<const flow_spec> schedule,
                                             std::chrono::milliseconds group_margin) {
    std::map<std::uint16_t, std::uint32_t> longest;
    for (const flow_spec& f : schedule) {
        std::uint32_t& l = longest[f.group];
        l = std::max(l, f.duration_ms);
    }
    std::chrono::milliseconds total{0};
    for (const auto& [group, ms] : longest)
        total += std::chrono::milliseconds(ms) + group_margin;
    return total;
}

result<std::chrono::milliseconds> validate_schedule(std::span<const flow_spec> schedule,
                                                    const schedule_bounds& bounds) {
    if (schedule.empty())
        return make_error(errc::invalid_argument, "schedule has no flows");
    if (schedule.size() > bounds.max_flows) {
        return make_error(errc::invalid_argument,
                          "schedule has " + std::to_string(schedule.size()) + " flows, at most " +
                              std::to_string(bounds.max_flows) + " allowed");
    }
    std::set<std::uint16_t> indices;
    std::map<std::uint16_t, std::size_t> group_sizes;
    for (const flow_spec& f : schedule) {
        if (!indices.insert(f.index).second) {
            return make_error(errc::invalid_argument,
                              "flow index " + std::to_string(f.index) + " appears twice");
        }
        const std::chrono::milliseconds d(f.duration_ms);
        if (d < bounds.min_flow_duration || d > bounds.max_flow_duration) {
            return make_error(errc::invalid_argument,
                              flow_label(f) + " lasts " + std::to_string(f.duration_ms) +
                                  " ms, outside " +
                                  std::to_string(bounds.min_flow_duration.count()) + ".." +
                                  std::to_string(bounds.max_flow_duration.count()) + " ms");
        }
        if (++group_sizes[f.group] > bounds.max_flows_per_group) {
            return make_error(errc::invalid_argument,
                              "group " + std::to_string(f.group) + " has more than " +
                                  std::to_string(bounds.max_flows_per_group) + " flows");
        }
    }
    const std::chrono::milliseconds wall = schedule_wall_time(schedule, bounds.group_margin);
    if (wall > bounds.max_test_wall) {
        return make_error(errc::invalid_argument,
                          "schedule needs " + std::to_string(wall.count()) + " ms, at most " +
                              std::to_string(bounds.max_test_wall.count()) + " ms allowed");
    }
    return wall;
}

token_t flow_token(const token_t& test_token, std::uint16_t index) noexcept {
    static const bool sodium_ready = sodium_init() >= 0;
    if (!sodium_ready)
        std::abort();
    std::array<std::uint8_t, flow_token_domain.size() + 2> input{};
    std::copy(flow_token_domain.begin(), flow_token_domain.end(), input.begin());
    input[flow_token_domain.size()] = static_cast<std::uint8_t>(index >> 8);
    input[flow_token_domain.size() + 1] = static_cast<std::uint8_t>(index & 0xff);
    token_t out{};
    static_assert(token_size >= crypto_generichash_BYTES_MIN);
    static_assert(token_size >= crypto_generichash_KEYBYTES_MIN);
    crypto_generichash(out.data(), out.size(), input.data(), input.size(), test_token.data(),
                       test_token.size());
    return out;
}

info_hash_t flow_info_hash(const token_t& test_token, std::uint16_t index) {
    const token_t t = flow_token(test_token, index);
    return diff::info_hash_of_token(t);
}

} // namespace glasnode::proto::negotiation
