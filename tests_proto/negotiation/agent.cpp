#include "tests_proto/negotiation/agent.hpp"

#include <string>
#include <utility>

namespace glasnode::proto::negotiation {

result<bytes> make_negotiate(std::span<const flow_spec> schedule, const schedule_bounds& bounds,
                             std::uint32_t test_version) {
    if (schedule.size() > max_schedule_flows) {
        return make_error(errc::invalid_argument, "schedule has more than " +
                                                      std::to_string(max_schedule_flows) +
                                                      " flows");
    }
    if (auto wall = validate_schedule(schedule, bounds); !wall)
        return wall.err();
    negotiate m;
    m.test_version = test_version;
    m.schedule.assign(schedule.begin(), schedule.end());
    return wire::encode_message(m);
}

result<bytes> make_collect(std::vector<flow_measurement> measurements) {
    if (measurements.size() > max_schedule_flows) {
        return make_error(errc::limit_exceeded, std::to_string(measurements.size()) +
                                                    " measurements exceed " +
                                                    std::to_string(max_schedule_flows));
    }
    const std::size_t budget = sample_budget(measurements.size());
    for (flow_measurement& m : measurements) {
        fit_samples(m, budget);
        if (auto s = check_measurement(m); !s)
            return s.err();
    }
    return wire::encode_message(collect{std::move(measurements)});
}

bytes make_cancel() {
    return wire::encode_message(cancel{});
}

result<provider_reply> decode_provider_reply(byte_view payload, const wire::decode_limits& limits) {
    static const wire::message_registry accepted = provider_to_agent_registry();
    auto env = wire::decode_envelope(payload, accepted, limits);
    if (!env)
        return env.err();
    const auto typed = [&env]<class M>() -> result<provider_reply> {
        auto m = wire::decode_body<M>(*env);
        if (!m)
            return m.err();
        return provider_reply{std::move(*m)};
    };
    switch (env->type()) {
    case queue_status::type_id:
        return typed.operator()<queue_status>();
    case grant::type_id:
        return typed.operator()<grant>();
    case wire::error_message::type_id:
        return typed.operator()<wire::error_message>();
    default:
        return typed.operator()<collect_reply>();
    }
}

std::vector<agent_flow> plan_flows(const token_t& token, std::span<const flow_spec> schedule) {
    std::vector<agent_flow> out;
    out.reserve(schedule.size());
    for (const flow_spec& f : schedule)
        out.push_back(agent_flow{f, agent_role(f.dir), flow_info_hash(token, f.index)});
    return out;
}

} // namespace glasnode::proto::negotiation
