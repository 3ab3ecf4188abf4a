// The vocabulary every part of the differential test shares: which way a flow goes, on which
// port, with which payload, in which role, and how it ended. The peer-wire codec, the
// schedule, the negotiation messages, the flow engine and the analysis all use these types, so
// a flow is described the same way from the socket to the verdict.
//
// Wire encodings are NOT the enumerator values: each message codec spells out its codes, so
// reordering these enums never changes the protocol.
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace glasnode::proto {

// Seen from the agent: upload = agent -> provider, download = provider -> agent.
enum class direction : std::uint8_t { upload, download };

// The BitTorrent-looking test port or the neutral one.
enum class test_port : std::uint8_t { bt, neutral };

enum class flow_kind : std::uint8_t {
    bt,      // the real BitTorrent peer-wire stream
    control, // the same bytes, each XOR 0xFF
};

// The seed sends pieces; the leech requests them and measures.
enum class flow_role : std::uint8_t { seed, leech };

// How one end saw a flow end. Failures of the network are measurement data.
enum class flow_end : std::uint8_t {
    completed,        // ran for its duration and closed gracefully
    reset_received,   // ECONNRESET or EPIPE: a RST reached this end
    eof_early,        // the peer closed before the duration was over
    stalled,          // no byte moved in either direction for the stall timeout
    connect_failed,   // the connection was refused or unreachable
    connect_timeout,  // no connection within the connect timeout
    handshake_failed, // bad or late handshake, or a protocol violation before the transfer
    refused,          // the provider closed without answering the handshake (token refused)
    error,            // a local failure, or the peer violated the protocol mid-flow
    not_run,          // never started (test cut short, or no report from this end)
};

// One scheduled flow of a differential test, as the agent proposes it, the provider checks it
// and both ends run it. Flows sharing a group run at the same time; groups run in ascending
// order. A flow's repetition number and whether it ran concurrently follow from the schedule
// (diff::match_measurements derives them), so they are not stored here.
struct flow_spec {
    std::uint16_t index = 0; // unique within one negotiation
    direction dir = direction::download;
    test_port port = test_port::bt;
    flow_kind kind = flow_kind::bt;
    std::uint16_t group = 0;
    std::uint32_t duration_ms = 0;

    friend bool operator==(const flow_spec&, const flow_spec&) = default;
};

// The provider seeds download flows and leeches upload flows; the agent does the opposite.
constexpr flow_role provider_role(direction dir) noexcept {
    return dir == direction::download ? flow_role::seed : flow_role::leech;
}
constexpr flow_role agent_role(direction dir) noexcept {
    return dir == direction::download ? flow_role::leech : flow_role::seed;
}

// The one bound on interval samples per flow, from the flow engine to the wire to the analysis:
// the flow engine never makes more (it widens its interval instead), collect messages carry at
// most this many, and the analysis and the report reader refuse more. Wehe uses 100 per flow;
// ten times that leaves room for finely sampled long flows.
inline constexpr std::size_t max_samples_per_flow = 1000;

// True when the flow never carried a transfer: the path (or the peer) kept it from starting.
constexpr bool never_connected(flow_end e) noexcept {
    return e == flow_end::connect_failed || e == flow_end::connect_timeout ||
           e == flow_end::refused || e == flow_end::not_run;
}

constexpr std::string_view to_string(direction d) noexcept {
    return d == direction::upload ? "upload" : "download";
}
constexpr std::string_view to_string(test_port p) noexcept {
    return p == test_port::bt ? "bt" : "neutral";
}
constexpr std::string_view to_string(flow_kind k) noexcept {
    return k == flow_kind::bt ? "bt" : "control";
}
constexpr std::string_view to_string(flow_role r) noexcept {
    return r == flow_role::seed ? "seed" : "leech";
}
constexpr std::string_view to_string(flow_end e) noexcept {
    switch (e) {
    case flow_end::completed:
        return "completed";
    case flow_end::reset_received:
        return "reset-received";
    case flow_end::eof_early:
        return "eof-early";
    case flow_end::stalled:
        return "stalled";
    case flow_end::connect_failed:
        return "connect-failed";
    case flow_end::connect_timeout:
        return "connect-timeout";
    case flow_end::handshake_failed:
        return "handshake-failed";
    case flow_end::refused:
        return "refused";
    case flow_end::error:
        return "error";
    case flow_end::not_run:
        return "not-run";
    }
    return "unknown";
}

} // namespace glasnode::proto
