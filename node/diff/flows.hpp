// Glue between the flow engine, the negotiation messages and the analysis, used by both the
// agent and the provider: a flow_report becomes the wire measurement each side exchanges in
// `collect`, and a test's schedule plus both sides' measurements become the flow records the
// analysis judges.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "node/flow/flow.hpp"
#include "tests_proto/analysis/verdict.hpp"
#include "tests_proto/negotiation/measurement.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::node {

proto::negotiation::flow_measurement to_measurement(const flow_report& report,
                                                    std::uint16_t index);

// One scheduled flow with what each end measured (not_run where an end has no report).
struct measured_flow {
    proto::negotiation::flow_spec spec;
    std::uint32_t repetition = 0;  // n-th flow of its (direction, port, kind, concurrency)
    bool concurrent = false;       // its group holds other flows
    proto::negotiation::flow_measurement agent;
    proto::negotiation::flow_measurement provider;

    // The end that received the payload (measures) and the end that sent it.
    const proto::negotiation::flow_measurement& receiver() const;
    const proto::negotiation::flow_measurement& sender() const;
    // Receiver-side mean over the measurement window, Mbit/s.
    double mbps() const;
};

// Matches measurements to the schedule by flow index; repetitions and concurrency are derived
// from the schedule's order and groups.
std::vector<measured_flow> match_measurements(
    std::span<const proto::negotiation::flow_spec> schedule,
    std::span<const proto::negotiation::flow_measurement> agent,
    std::span<const proto::negotiation::flow_measurement> provider);

// The analysis input: receiver samples in bit/s, each end's resets, concurrent groups.
std::vector<proto::flow_record> to_flow_records(std::span<const measured_flow> flows);

} // namespace glasnode::node
