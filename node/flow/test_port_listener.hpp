// The provider's test port: accepts agents' flows, classifies each connection by its first 68
// bytes (BitTorrent handshake or its bit-inverted control twin), asks the caller whether the
// info-hash belongs to a live token, and runs the flow with the parameters the caller returns.
//
// Every accepted connection ends in exactly one callback: `report` for a flow that ran (its
// outcome, failures included, is in the flow_report), `reject` for one that never got that far
// (too many unauthenticated connections, handshake timeout, garbage, token refused, flow limit).
// Callbacks run on the listener's executor and are never called after stop() or destruction.
// A callback that throws loses its own notification; the exception is logged.
//
// Bounds: at most max_unauthenticated connections may be between accept and a validated
// handshake (the excess is closed at once), each gets handshake_timeout to send 68 bytes, and at
// most max_flows flows run at the same time.
//
// Thread-safety: every call, and the executor, from one thread (an io_context run by one thread
// or a strand). Not copyable or movable: running flows refer to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility> // before Asio (Boost 1.74 needs it for std::exchange)

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "node/flow/flow.hpp"
#include "storage/result.hpp"

namespace glasnode::node {

namespace detail {
class flow_session;
}

struct test_port_config {
    boost::asio::ip::tcp::endpoint bind; // port 0: any free port (see local_endpoint())
    std::size_t max_unauthenticated = 32;
    std::chrono::milliseconds handshake_timeout{10'000};
    std::size_t max_flows = 8;
};

// What the validator learns from an agent's handshake.
struct flow_request {
    proto::diff::flow_kind kind;
    proto::diff::info_hash_t info_hash; // already un-inverted for a control flow
    proto::diff::peer_id_t peer_id;
    boost::asio::ip::tcp::endpoint remote;
};

enum class rejection_reason : std::uint8_t {
    too_many_unauthenticated, // closed at accept: max_unauthenticated reached
    handshake_timeout,        // fewer than 68 bytes within handshake_timeout
    closed_early,             // EOF or reset before 68 bytes
    not_bittorrent,           // first bytes neither BitTorrent nor its inverse
    token_refused,            // the validator refused the info-hash
    too_many_flows,           // max_flows reached
    io_error,
};

std::string_view to_string(rejection_reason reason) noexcept;

struct flow_rejection {
    rejection_reason reason;
    std::string detail;
    boost::asio::ip::tcp::endpoint remote;
    // A RST ended the connection before its handshake was read.
    std::uint32_t resets_received = 0;
    // Whether our side may have made the peer's application see a reset: false only when the
    // peer closed first or we gave up waiting with nothing unread (a FIN; the agent is then
    // reading, and sees end of file). A connection closed at accept or after we read its
    // handshake may be answered with a RST when the peer's next bytes arrive.
    bool could_reset_peer = true;
};

struct test_port_stats {
    std::uint64_t accepted = 0;
    std::uint64_t rejected = 0; // includes excess_dropped
    std::uint64_t excess_dropped = 0;
    std::uint64_t flows_started = 0;
    std::uint64_t flows_finished = 0;
    std::size_t unauthenticated = 0; // now
    std::size_t running = 0;         // now
};

// Returns the parameters of the flow (role, duration, seed, timeouts ...) if `request` carries a
// live token, std::nullopt to refuse. kind and info_hash of the returned params are ignored:
// the handshake decides them. Called synchronously; must not throw.
using flow_validator = std::function<std::optional<flow_params>(const flow_request&)>;
using flow_report_handler = std::function<void(const flow_report&)>;
using flow_rejection_handler = std::function<void(const flow_rejection&)>;

class test_port_listener {
public:
    // Binds and starts accepting. errc::io_error if the address cannot be bound;
    // errc::invalid_argument for a missing validator or report handler, or zero limits.
    static result<std::unique_ptr<test_port_listener>>
    open(boost::asio::any_io_executor executor, test_port_config config, flow_validator validator,
         flow_report_handler on_report, flow_rejection_handler on_reject = {});

    test_port_listener(const test_port_listener&) = delete;
    test_port_listener& operator=(const test_port_listener&) = delete;
    ~test_port_listener(); // stop()

    // Stops accepting and aborts every connection, whatever its state (waiting for a
    // handshake, running a flow); no callback is made afterwards. Everything the listener
    // started on the executor then ends promptly, so an io_context with nothing else to do
    // returns from run().
    void stop() noexcept;

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    test_port_stats stats() const noexcept;

private:
    struct state; // shared with the running coroutines, which may outlive the listener
    explicit test_port_listener(std::shared_ptr<state> s);
    static boost::asio::awaitable<void> accept_loop(std::shared_ptr<state> s);
    static boost::asio::awaitable<void> serve(std::shared_ptr<state> s,
                                              std::shared_ptr<detail::flow_session> session);
    std::shared_ptr<state> m_state;
};

} // namespace glasnode::node
