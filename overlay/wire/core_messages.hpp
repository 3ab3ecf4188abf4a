// The overlay core's message types (range 0x0001 - 0x00ff, see message.hpp): the secure
// channel's handshake (hello, auth), liveness (ping, pong) and error reports.
//
// Errors: decode() returns errc::protocol_error for a wrong field count or type and
// errc::limit_exceeded for an oversized field; it never throws.
// Thread-safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "overlay/wire/message.hpp"

namespace glasnode::wire {

using key_bytes = std::array<std::uint8_t, 32>;

// First frame of the secure channel, sent in plaintext by both sides.
struct hello {
    static constexpr message_type type_id = 0x0001;
    static constexpr std::string_view name = "hello";
    std::uint64_t channel_version = 0; // secure-channel protocol version
    key_bytes static_key{};            // ed25519 public key: the node id
    key_bytes kx_key{};                // ephemeral X25519 public key (crypto_kx)
    key_bytes nonce{};                 // fresh random bytes the peer signs over

    void encode(packer& pk) const;
    static result<hello> decode(const msgpack::object& body);
};

// First encrypted frame of the secure channel.
struct auth {
    static constexpr message_type type_id = 0x0002;
    static constexpr std::string_view name = "auth";
    std::array<std::uint8_t, 64> signature{}; // ed25519 over (auth domain || role || transcript)

    void encode(packer& pk) const;
    static result<auth> decode(const msgpack::object& body);
};

struct ping {
    static constexpr message_type type_id = 0x0003;
    static constexpr std::string_view name = "ping";
    std::uint64_t nonce = 0;

    void encode(packer& pk) const;
    static result<ping> decode(const msgpack::object& body);
};

// Answers a ping with its nonce.
struct pong {
    static constexpr message_type type_id = 0x0004;
    static constexpr std::string_view name = "pong";
    std::uint64_t nonce = 0;

    void encode(packer& pk) const;
    static result<pong> decode(const msgpack::object& body);
};

// Stable wire codes (never renumbered); a receiver maps unknown codes to `other`.
enum class wire_error : std::uint16_t {
    other = 0,
    protocol = 1,            // the receiver could not follow what was sent
    unsupported_version = 2, // version the receiver does not speak
    busy = 3,                // try again later (queue full, rate limit)
    limit_exceeded = 4,      // a size or count bound was hit
    refused = 5,             // understood and declined (policy, unknown token)
    internal = 6,            // the sender failed on its own side
};

// The one mapping between local error codes and wire codes, used by every end that sends an
// error_message for an errc or turns a peer's error_message into an error.
constexpr wire_error to_wire_error(errc code) noexcept {
    switch (code) {
    case errc::unsupported_version:
        return wire_error::unsupported_version;
    case errc::limit_exceeded:
        return wire_error::limit_exceeded;
    case errc::busy:
        return wire_error::busy;
    case errc::protocol_error:
        return wire_error::protocol;
    case errc::invalid_argument:
    case errc::not_found:
    case errc::auth_failed:
        return wire_error::refused;
    case errc::io_error:
    case errc::corrupt:
    case errc::timeout:
    case errc::closed:
        return wire_error::internal;
    }
    return wire_error::other;
}
// A peer's code (unknown values included) as the error the receiver reports: refused is
// invalid_argument (the request was understood and declined), internal and other are closed
// (the peer gave up on its side).
constexpr errc to_errc(std::uint16_t wire_code) noexcept {
    switch (static_cast<wire_error>(wire_code)) {
    case wire_error::protocol:
        return errc::protocol_error;
    case wire_error::unsupported_version:
        return errc::unsupported_version;
    case wire_error::busy:
        return errc::busy;
    case wire_error::limit_exceeded:
        return errc::limit_exceeded;
    case wire_error::refused:
        return errc::invalid_argument;
    case wire_error::other:
    case wire_error::internal:
        return errc::closed;
    }
    return errc::closed;
}

// Tells the peer why the sender is about to close or decline. The reason is peer-supplied
// text: printable ASCII only (checked on decode), at most max_reason bytes.
struct error_message {
    static constexpr message_type type_id = 0x0005;
    static constexpr std::string_view name = "error";
    static constexpr std::size_t max_reason = 256;
    std::uint16_t code = 0; // a wire_error value; unknown values are kept as they are
    std::string reason;

    // Encodes at most max_reason bytes of `reason`, non-printable bytes replaced by '?'.
    void encode(packer& pk) const;
    static result<error_message> decode(const msgpack::object& body);
};

// Adds hello, auth, ping, pong and error to `registry`.
status add_core_messages(message_registry& registry);
// A registry holding only the core messages.
message_registry core_message_registry();

} // namespace glasnode::wire
