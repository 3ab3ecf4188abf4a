// Glue between the flow engine and the differential test's data: a flow_report becomes the
// wire measurement each side exchanges in `collect` (tests_proto/diff/measurement.hpp). The
// pure parts of a test (matching both ends' measurements to the schedule, the analysis input)
// live in tests_proto/diff/test_data.hpp.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "node/flow/flow.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/diff/test_data.hpp"

namespace glasnode::node {

using proto::diff::measured_flow;

proto::diff::flow_measurement to_measurement(const flow_report& report, std::uint16_t index);

} // namespace glasnode::node
