// The agent side of the differential test: one full test against one provider.
//
// Dials the provider's control port (authenticated channel) and drives the agent core
// (tests_proto/negotiation/agent.hpp), which negotiates a schedule, waits its turn in the
// provider's queue, runs the flows (one slot at a time; the flows of a concurrent group
// together) to the provider's test ports, exchanges measurements (collect), analyses both ends'
// view, and when a comparison is positive or inconclusive runs one confirmation rerun of just
// those comparisons. A provider that stops answering ends the test within silence_timeout.
//
// Errors: result errors only when the test could not run (provider unreachable, handshake
// failed, refused, busy, protocol violation, provider silent). Flows still running when the
// test fails are abandoned: they end on their own timeouts. What the path did to the flows (resets,
// stalls, failed connects) is measurement data inside the report.
// Thread-safety: runs on the executor it is spawned on; the identity and random source must
// outlive it.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "node/asio.hpp"
#include "node/control/connection.hpp"
#include "node/diff/report.hpp"
#include "overlay/identity/identity.hpp"
#include "tests_proto/diff/schedule.hpp"

namespace glasnode::node {

struct agent_options {
    proto::diff::schedule_params schedule;
    bool confirm = true;                              // rerun positive/inconclusive comparisons
    std::chrono::milliseconds queue_timeout{300'000}; // longest wait for the provider's slot
    std::chrono::milliseconds reply_timeout{30'000};  // other control replies
    // A ping this often while the test is live (providers drop silent control connections;
    // the default idle timeout is 2 min).
    std::chrono::milliseconds queue_keepalive{5'000};
    // Nothing from the provider for this long ends the test.
    std::chrono::milliseconds silence_timeout{15'000};
    std::chrono::milliseconds connect_timeout{3'000}; // each test flow's TCP connect
    std::string congestion_control;                   // "" = the system's default
    std::optional<overlay::public_key> expected_peer; // refuse any other provider key
    connection_options connection{};
    // One line per step, for a person watching (stderr in the CLI).
    std::function<void(const std::string&)> progress;
};

asio::awaitable<result<test_report>> run_diff_test(asio::any_io_executor ex, tcp::endpoint provider,
                                                   const overlay::identity& self,
                                                   random_source& rng, agent_options options);

} // namespace glasnode::node
