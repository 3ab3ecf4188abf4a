// The secure control channel between two nodes (sans-IO core).
//
// Every later protocol (negotiation, firewall check, gossip) runs over it. The core never
// touches a socket: the I/O layer feeds it the bytes it read (receive()), writes what
// take_output() returns, and hands decrypted messages (next_message()) to the protocol on top.
// It keeps no clock: handshake and idle deadlines belong to the driver.
//
// Protocol, version 1 (both sides act at once; nothing waits on a round trip):
//   1. Each side sends a plaintext frame: hello{version, static ed25519 key, ephemeral X25519
//      key-exchange key, 32-byte fresh nonce}.
//   2. On the peer's hello each side derives direction keys with crypto_kx (initiator = kx
//      client) and computes the transcript hash th = BLAKE2b-256(domain || initiator hello
//      payload || responder hello payload). It then sends, as the first ENCRYPTED frame,
//      auth{ed25519 signature over (auth domain || its role || th)}. th covers both static
//      keys, both ephemeral keys and both nonces: each side signs the other's fresh nonce
//      bound to both keys, and the session keys are bound to the identities.
//   3. On the peer's auth (decrypts under the session key AND signature verifies under the
//      static key the peer presented) the channel is established; peer() is that key.
//   After that, every frame is ChaCha20-Poly1305 (IETF) with a per-direction key and an
//   implicit 64-bit counter as nonce: a replayed, reordered, dropped, truncated or altered
//   frame fails authentication.
//
// Exact encoding (overlay/wire/core_messages.hpp for hello and auth):
//   th = BLAKE2b-256("glasnode/channel/v1/transcript" || le32(len) || initiator hello payload
//        || le32(len) || responder hello payload)
//   auth signs "glasnode/channel/v1/auth" || role byte (1 initiator, 2 responder) || th
//   AEAD nonce = 4 zero bytes || le64(counter); each direction counts from 0 (auth is frame 0)
//   and no associated data is used.
//
// Errors: any violation (malformed or oversized frame, unknown version, wrong message type,
// key mismatch with expect_peer(), bad signature, failed decryption, a replayed handshake)
// moves the channel to failed(); failure() gives a reason fit for a log line; every later
// call returns that error. The caller must then close the connection. Nothing throws.
//
// Thread-safety: none; one instance per connection, used from one thread.
// Not copyable or movable (drivers hold references to it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "overlay/identity/identity.hpp"
#include "overlay/identity/random.hpp"
#include "overlay/wire/bytes.hpp"
#include "storage/result.hpp"

namespace glasnode::overlay {

enum class channel_role : std::uint8_t { initiator = 1, responder = 2 };

struct channel_limits {
    // Largest frame payload accepted or sent (ciphertext incl. the 16-byte tag).
    std::size_t max_frame = 256 * 1024;
    // Decrypted messages held for the caller before receive() refuses more input.
    std::size_t max_pending_messages = 1024;
};

class secure_channel {
public:
    // `self` and `rng` must outlive the channel. The hello frame is queued at once:
    // call take_output() right after construction.
    secure_channel(channel_role role, const identity& self, random_source& rng,
                   channel_limits limits = {});
    ~secure_channel();
    secure_channel(const secure_channel&) = delete;
    secure_channel& operator=(const secure_channel&) = delete;

    // Initiators usually know whom they dial: a peer presenting another key is refused.
    // Must be called before the peer's hello is received.
    void expect_peer(const public_key& key);

    // Bytes read from the transport, any split. Errors fail the channel (see above), with one
    // exception: while max_pending_messages messages wait for next_message(), receive()
    // returns errc::busy WITHOUT failing and without consuming any of `in` (back-pressure:
    // drain, then offer the same bytes again). Tell the two apart with failed(); a peer's
    // error message during the handshake can fail the channel with errc::busy too. One call
    // consumes all of `in`, so pending may exceed the bound by the frames in that one call.
    status receive(byte_view in);

    // Encrypts one application message (typically an encoded wire message) into the output.
    // errc::invalid_argument before establishment or if it exceeds the frame limit.
    status send(byte_view plaintext);

    // Bytes to write to the transport, in order; empties the internal buffer.
    bytes take_output();
    // The next decrypted application message, in order of arrival.
    std::optional<bytes> next_message();

    bool established() const noexcept;
    bool failed() const noexcept;
    const error& failure() const; // only when failed()
    channel_role role() const noexcept;
    // The authenticated peer key; only when established().
    const public_key& peer() const;

private:
    struct state;
    std::unique_ptr<state> m;
};

} // namespace glasnode::overlay
