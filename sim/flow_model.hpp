// The flow-level model of the differential test's flows: what each end of a modelled flow
// measures, and when, on a path with a bottleneck and an ISP policy. It stands in for the flow
// engine (node/flow), which pushes real bytes through real sockets: the model produces the same
// flow_measurement records, following the same sampling and end rules
// (tests_proto/diff/sampling.hpp), so the real analysis judges them as it judges real flows.
//
// Timeline of one flow, from its start (the agent's connect), with R the path's RTT:
//   0        the agent sends SYN (the agent always connects, the provider always accepts);
//   R        connected (the agent's connect_time); the agent sends its handshake;
//   1.5 R    the provider has read the handshake: the driver asks the provider core to
//            authorise the flow (handshake_at);
//   2 R      handshakes done; the leech's first request opens its measurement window of the
//            flow's duration D;
//   3 R      the first payload byte reaches the leech;
//   2 R + D  the window is over: the leech stops requesting and shuts down its side;
//   2.5 R + D the seed reads that EOF, stops and ends (its served time is D: completed);
//   3 R + D  the last bytes and the seed's FIN reach the leech, which ends (completed).
// Payload moves as a TCP-like flow: slow start from initial_window segments, doubling every
// RTT, until the window exceeds the flow's share of the bottleneck; from then on it runs at that
// share (no sawtooth: the noise stands in for TCP's and cross traffic's variation). Flows of one
// slot that go the same way share that direction's bottleneck max-min fairly, so concurrent
// pairs see the same noise (the paired rule's premise). The noise is multiplicative on the
// link's rate, one draw per sample interval: max(0.05, 1 + noise x N(0, 1)).
//
// Policies (path_policy) act on flows they match: by content (BitTorrent payload, any port) or
// by port (any payload to `port`), in the directions they cover:
//   throttle  the flow's rate is capped at fraction x the path rate; with after_bytes > 0 only
//             once the connection has carried that many payload bytes (a delayed throttle);
//   block     drop:   SYNs are dropped; the agent ends connect_timeout after the connect timeout
//                     (port match only: a SYN carries no payload to classify);
//             reject: SYNs are answered with a RST; connect_failed after one RTT (port only);
//             stall:  the handshake passes, then nothing: both ends end stalled a stall
//                     timeout after the window opened, with no payload;
//   reset     after after_bytes payload bytes the path forges a RST to both ends: each ends
//             reset_received with resets_received = 1 and resets_sent = 0 (neither sent it).
//             With first_packet the agent's handshake is answered with the RST and dropped:
//             the agent ends reset_received one and a half RTTs in, and the provider's test
//             port loses a connection it never identified (unidentified_at).
// Wire byte counts add the peer-wire framing (68-byte handshake, 17-byte requests, 13-byte piece
// headers per 16 KiB block) to the payload: close to the real counts, not exact.
//
// Errors: none (inputs are bounded by the scenario loader; see sim/scenario.hpp).
// Thread-safety: pure functions of their inputs and of the random_source they draw from.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "overlay/identity/random.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/flow_types.hpp"
#include "tests_proto/negotiation/agent.hpp"

namespace glasnode::sim {

using proto::diff::flow_measurement;

struct path_model {
    // Bottleneck rates in bit/s, each > 0: download is provider -> agent.
    double download_bps = 40e6;
    double upload_bps = 40e6;
    std::chrono::microseconds rtt{20'000}; // > 0
    double noise = 0.0;                    // relative sd of the rate per interval, >= 0
    std::uint32_t initial_window = 10;     // segments of mss bytes, >= 1
    std::uint32_t mss = 1448;
};

enum class policy_action : std::uint8_t { none, throttle, block, reset };
enum class policy_match : std::uint8_t { content, port };
enum class block_mode : std::uint8_t { drop, reject, stall };

struct path_policy {
    policy_action action = policy_action::none;
    policy_match match = policy_match::content;
    std::uint16_t port = 6881;     // the port a port-matching policy penalises
    double fraction = 1.0;         // throttle: cap as a fraction of the path rate, in (0, 1]
    std::uint64_t after_bytes = 0; // throttle: full rate until then; reset: bytes before the RST
    // reset: the handshake itself is answered with a RST to both ends and never delivered, so
    // the provider cannot tell which flow the connection was (after_bytes unused).
    bool first_packet = false;
    block_mode block = block_mode::drop;
    bool download = true; // directions the policy covers
    bool upload = true;
    // A classifier that remembers endpoints (nDPI's ip:port cache): once a BitTorrent flow went
    // to a port, every later flow to it matches, whatever it carries. The ports it remembers
    // are state the caller carries from slot to slot (diff_harness adds a port after each slot
    // in which a BT flow reached it); the model only reads them.
    bool remember_endpoints = false;
    std::vector<std::uint16_t> remembered_ports;

    // True when the policy acts on a flow of this kind and direction to destination `port`.
    bool matches(proto::flow_kind kind, proto::direction dir, std::uint16_t to_port) const noexcept;
};

// The flow engine's timeouts that decide how a blocked flow ends: the agent's connect timeout
// (node/diff/agent.hpp) and the flow engine's stall timeout (node/flow/flow.hpp).
struct flow_timeouts {
    std::chrono::milliseconds connect{3'000};
    std::chrono::milliseconds stall{5'000};
};

// One modelled flow: what each end reports and when, as offsets from the flow's start.
struct modelled_flow {
    flow_measurement agent;
    std::chrono::nanoseconds agent_done{0};
    // When the provider reads the handshake and asks to authorise the flow; nullopt when the
    // connection never completes (the provider then never hears of the flow).
    std::optional<std::chrono::nanoseconds> handshake_at;
    flow_measurement provider; // meaningful only with handshake_at
    std::chrono::nanoseconds provider_done{0};
    // When the provider's test port loses a connection it could not identify (a first-packet
    // reset), and the resets it received on it; nullopt otherwise.
    std::optional<std::chrono::nanoseconds> unidentified_at;
    std::uint32_t unidentified_resets = 0;
};

// Models the flows of one slot (started together). `noise` draws the link's noise, in a fixed
// order: the same inputs and stream state give the same flows. One result per flow, in order.
// max_rate_bps > 0: every flow's sender paces at no more than that (the test's pacing cap,
// proto::diff::schedule_params), as the seeds' SO_MAX_PACING_RATE does; a flow the agent seeds
// paces at its own max_rate_bps when that is set (a paired upload on an asymmetric path).
std::vector<modelled_flow> model_slot(std::span<const proto::negotiation::flow_to_run> flows,
                                      const path_model& path, const path_policy& policy,
                                      const flow_timeouts& timeouts, random_source& noise,
                                      std::uint64_t max_rate_bps = 0);

// What the agent's end reports of a flow the provider refused at the handshake (it closes
// without answering): `refused` half an RTT after handshake_at.
flow_measurement refused_at_handshake(const proto::negotiation::flow_to_run& flow,
                                      const path_model& path);

} // namespace glasnode::sim
