// The vocabulary every part of the differential test shares: which way a flow goes, on which
// port, with which payload, in which role, and how it ended. The peer-wire codec, the
// schedule, the negotiation messages, the flow engine and the analysis all use these types, so
// a flow is described the same way from the socket to the verdict.
//
// Wire encodings are NOT the enumerator values: each message codec spells out its codes, so
// reordering these enums never changes the protocol.
// Thread-safety: plain values.
#pragma once

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
    case flow_end::completed: return "completed";
    case flow_end::reset_received: return "reset-received";
    case flow_end::eof_early: return "eof-early";
    case flow_end::stalled: return "stalled";
    case flow_end::connect_failed: return "connect-failed";
    case flow_end::connect_timeout: return "connect-timeout";
    case flow_end::handshake_failed: return "handshake-failed";
    case flow_end::refused: return "refused";
    case flow_end::error: return "error";
    case flow_end::not_run: return "not-run";
    }
    return "unknown";
}

} // namespace glasnode::proto
