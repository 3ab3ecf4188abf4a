#include "overlay/channel/secure_channel.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <sodium.h>

#include "overlay/identity/sodium_init.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/frame.hpp"
#include "overlay/wire/message.hpp"

namespace glasnode::overlay {

namespace {

constexpr std::uint64_t channel_version = 1;
constexpr std::string_view transcript_domain = "glasnode/channel/v1/transcript";
constexpr std::string_view auth_domain = "glasnode/channel/v1/auth";
constexpr std::size_t tag_size = crypto_aead_chacha20poly1305_ietf_ABYTES;

static_assert(crypto_kx_PUBLICKEYBYTES == 32 && crypto_kx_SESSIONKEYBYTES == 32);
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == crypto_kx_SESSIONKEYBYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);

// Handshake frames are small: tight bounds make a hostile hello cheap to refuse.
constexpr wire::decode_limits handshake_limits{
    .max_depth = 3, .max_array = 8, .max_map = 0, .max_str = 512, .max_bin = 64, .max_ext = 0};

enum class phase : std::uint8_t { await_hello, await_auth, established, failed };

using session_key = std::array<std::uint8_t, crypto_kx_SESSIONKEYBYTES>;

std::array<std::uint8_t, 12> counter_nonce(std::uint64_t counter) {
    std::array<std::uint8_t, 12> n{};
    for (int i = 0; i < 8; ++i)
        n[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
    return n;
}

void append_le32(crypto_generichash_state& h, std::size_t size) {
    std::array<std::uint8_t, 4> b{};
    for (int i = 0; i < 4; ++i)
        b[i] = static_cast<std::uint8_t>(size >> (8 * i));
    crypto_generichash_update(&h, b.data(), b.size());
}

} // namespace

struct secure_channel::state {
    state(channel_role r, const identity& id, random_source& random, channel_limits l)
        : role(r), self(id), rng(random), limits(l), decoder(l.max_frame) {}

    ~state() {
        sodium_memzero(kx_sk.data(), kx_sk.size());
        sodium_memzero(rx_key.data(), rx_key.size());
        sodium_memzero(tx_key.data(), tx_key.size());
    }

    channel_role role;
    const identity& self;
    random_source& rng;
    channel_limits limits;
    wire::frame_decoder decoder;
    wire::message_registry handshake_types;
    phase ph = phase::await_hello;

    std::array<std::uint8_t, crypto_kx_PUBLICKEYBYTES> kx_pk{};
    std::array<std::uint8_t, crypto_kx_SECRETKEYBYTES> kx_sk{};
    bytes own_hello; // the payload we sent: half of the transcript
    std::optional<public_key> expected;
    public_key peer{};
    bool peer_known = false;
    std::array<std::uint8_t, 32> transcript{};

    session_key rx_key{};
    session_key tx_key{};
    std::uint64_t rx_counter = 0;
    std::uint64_t tx_counter = 0;

    bytes output;
    std::deque<bytes> pending;
    std::vector<bytes> frames; // scratch for receive()
    std::optional<error> failure;

    status fail(errc code, std::string reason) {
        if (!failure)
            failure = make_error(code, std::move(reason));
        ph = phase::failed;
        pending.clear();
        sodium_memzero(rx_key.data(), rx_key.size());
        sodium_memzero(tx_key.data(), tx_key.size());
        return *failure;
    }

    void encrypt_frame(byte_view plaintext) {
        const std::size_t at = wire::begin_frame(output, plaintext.size() + tag_size);
        const auto nonce = counter_nonce(tx_counter++);
        unsigned long long written = 0;
        crypto_aead_chacha20poly1305_ietf_encrypt(
            output.data() + at, &written, plaintext.empty() ? nullptr : plaintext.data(),
            plaintext.size(), nullptr, 0, nullptr, nonce.data(), tx_key.data());
        assert(written == plaintext.size() + tag_size);
    }

    // Decrypts in place into `out`; false if the frame does not authenticate under the next
    // expected counter.
    bool decrypt_frame(const bytes& frame, bytes& out) {
        if (frame.size() < tag_size || rx_counter == std::numeric_limits<std::uint64_t>::max()) {
            return false;
        }
        const auto nonce = counter_nonce(rx_counter);
        out.resize(frame.size() - tag_size);
        unsigned long long written = 0;
        const int rc = crypto_aead_chacha20poly1305_ietf_decrypt(
            out.empty() ? nullptr : out.data(), &written, nullptr, frame.data(), frame.size(),
            nullptr, 0, nonce.data(), rx_key.data());
        if (rc != 0)
            return false;
        ++rx_counter;
        return true;
    }

    bytes auth_message(channel_role signer) const {
        bytes signed_part(auth_domain.begin(), auth_domain.end());
        signed_part.push_back(static_cast<std::uint8_t>(signer));
        signed_part.insert(signed_part.end(), transcript.begin(), transcript.end());
        return signed_part;
    }

    status on_hello(const bytes& frame) {
        auto env = wire::decode_envelope(frame, handshake_types, handshake_limits);
        if (!env)
            return fail(env.err().code, "handshake: " + env.err().reason);
        if (env->type() == wire::error_message::type_id) {
            auto e = wire::decode_body<wire::error_message>(*env);
            if (!e)
                return fail(e.err().code, "handshake: " + e.err().reason);
            return fail(wire::to_errc(e->code), "handshake: peer refused with error " +
                                                    std::to_string(e->code) + ": " + e->reason);
        }
        auto h = wire::decode_body<wire::hello>(*env);
        if (!h)
            return fail(h.err().code, "handshake: " + h.err().reason);
        if (h->channel_version != channel_version) {
            return fail(errc::unsupported_version, "handshake: peer speaks channel version " +
                                                       std::to_string(h->channel_version) +
                                                       " (this node speaks " +
                                                       std::to_string(channel_version) + ")");
        }
        if (h->static_key == self.key()) {
            return fail(errc::auth_failed, "handshake: peer presented our own key");
        }
        if (expected && *expected != h->static_key) {
            return fail(errc::auth_failed, "handshake: peer presented key " +
                                               short_id(h->static_key) + " but " +
                                               short_id(*expected) + " was expected");
        }
        const int kx =
            role == channel_role::initiator
                ? crypto_kx_client_session_keys(rx_key.data(), tx_key.data(), kx_pk.data(),
                                                kx_sk.data(), h->kx_key.data())
                : crypto_kx_server_session_keys(rx_key.data(), tx_key.data(), kx_pk.data(),
                                                kx_sk.data(), h->kx_key.data());
        sodium_memzero(kx_sk.data(), kx_sk.size());
        if (kx != 0) {
            return fail(errc::protocol_error, "handshake: peer key-exchange key " +
                                                  to_hex(byte_view(h->kx_key).first(8)) +
                                                  "... is unusable");
        }
        peer = h->static_key;
        peer_known = true;

        const bytes& initiator_hello = role == channel_role::initiator ? own_hello : frame;
        const bytes& responder_hello = role == channel_role::initiator ? frame : own_hello;
        crypto_generichash_state hs;
        crypto_generichash_init(&hs, nullptr, 0, transcript.size());
        crypto_generichash_update(&hs,
                                  reinterpret_cast<const std::uint8_t*>(transcript_domain.data()),
                                  transcript_domain.size());
        append_le32(hs, initiator_hello.size());
        crypto_generichash_update(&hs, initiator_hello.data(), initiator_hello.size());
        append_le32(hs, responder_hello.size());
        crypto_generichash_update(&hs, responder_hello.data(), responder_hello.size());
        crypto_generichash_final(&hs, transcript.data(), transcript.size());

        wire::auth a;
        a.signature = self.sign(auth_message(role));
        encrypt_frame(wire::encode_message(a));
        ph = phase::await_auth;
        return {};
    }

    status on_auth(const bytes& frame) {
        bytes plain;
        if (!decrypt_frame(frame, plain)) {
            return fail(errc::auth_failed,
                        "handshake: auth frame from " + short_id(peer) +
                            " failed authentication (no shared session key: replayed or "
                            "altered handshake)");
        }
        auto a = wire::decode_message<wire::auth>(plain, handshake_limits);
        if (!a)
            return fail(a.err().code, "handshake: " + a.err().reason);
        const channel_role peer_role =
            role == channel_role::initiator ? channel_role::responder : channel_role::initiator;
        if (!verify(peer, auth_message(peer_role), a->signature)) {
            return fail(errc::auth_failed,
                        "handshake: auth signature does not verify for presented key " +
                            short_id(peer));
        }
        ph = phase::established;
        return {};
    }

    status on_data(const bytes& frame) {
        const std::uint64_t number = rx_counter;
        bytes plain;
        if (!decrypt_frame(frame, plain)) {
            return fail(errc::auth_failed, "frame " + std::to_string(number) + " from " +
                                               short_id(peer) +
                                               " failed authentication (altered, replayed or "
                                               "reordered)");
        }
        pending.push_back(std::move(plain));
        return {};
    }

    status on_frame(const bytes& frame) {
        switch (ph) {
        case phase::await_hello:
            return on_hello(frame);
        case phase::await_auth:
            return on_auth(frame);
        case phase::established:
            return on_data(frame);
        case phase::failed:
            break;
        }
        return *failure;
    }
};

secure_channel::secure_channel(channel_role role, const identity& self, random_source& rng,
                               channel_limits limits)
    : m(std::make_unique<state>(role, self, rng, limits)) {
    ensure_sodium();
    // Before the peer's auth only its hello, or an error explaining a refusal, may arrive.
    [[maybe_unused]] status added = m->handshake_types.add<wire::hello>();
    assert(added.ok());
    added = m->handshake_types.add<wire::error_message>();
    assert(added.ok());

    std::array<std::uint8_t, crypto_kx_SEEDBYTES> kx_seed{};
    rng.fill(kx_seed);
    crypto_kx_seed_keypair(m->kx_pk.data(), m->kx_sk.data(), kx_seed.data());
    sodium_memzero(kx_seed.data(), kx_seed.size());

    wire::hello h;
    h.channel_version = channel_version;
    h.static_key = self.key();
    h.kx_key = m->kx_pk;
    rng.fill(h.nonce);
    m->own_hello = wire::encode_message(h);
    wire::append_frame(m->output, m->own_hello);
}

secure_channel::~secure_channel() = default;

void secure_channel::expect_peer(const public_key& key) {
    if (m->ph == phase::failed)
        return;
    m->expected = key;
    if (m->peer_known && m->peer != key) {
        (void)m->fail(errc::auth_failed, "handshake: peer presented key " + short_id(m->peer) +
                                             " but " + short_id(key) + " was expected");
    }
}

status secure_channel::receive(byte_view in) {
    if (m->failure)
        return *m->failure;
    if (m->pending.size() >= m->limits.max_pending_messages) {
        return make_error(errc::busy, "secure channel: " + std::to_string(m->pending.size()) +
                                          " received messages not taken yet");
    }
    m->frames.clear();
    const status fed = m->decoder.feed(in, m->frames);
    for (const bytes& frame : m->frames) {
        if (auto s = m->on_frame(frame); !s) {
            m->frames.clear();
            return s;
        }
    }
    m->frames.clear();
    if (!fed)
        return m->fail(fed.err().code, "framing: " + fed.err().reason);
    return {};
}

status secure_channel::send(byte_view plaintext) {
    if (m->failure)
        return *m->failure;
    if (m->ph != phase::established) {
        return make_error(errc::invalid_argument,
                          "secure channel: send before the handshake completed");
    }
    if (plaintext.size() > m->limits.max_frame ||
        m->limits.max_frame - plaintext.size() < tag_size) {
        return make_error(errc::invalid_argument,
                          "secure channel: message of " + std::to_string(plaintext.size()) +
                              " bytes exceeds the frame limit of " +
                              std::to_string(m->limits.max_frame) + " (16 of them for the tag)");
    }
    if (m->tx_counter == std::numeric_limits<std::uint64_t>::max()) {
        return m->fail(errc::limit_exceeded, "secure channel: send counter exhausted");
    }
    m->encrypt_frame(plaintext);
    return {};
}

bytes secure_channel::take_output() {
    return std::exchange(m->output, {});
}

std::optional<bytes> secure_channel::next_message() {
    if (m->pending.empty())
        return std::nullopt;
    bytes out = std::move(m->pending.front());
    m->pending.pop_front();
    return out;
}

bool secure_channel::established() const noexcept {
    return m->ph == phase::established;
}

bool secure_channel::failed() const noexcept {
    return m->ph == phase::failed;
}

const error& secure_channel::failure() const {
    assert(m->failure);
    return *m->failure;
}

channel_role secure_channel::role() const noexcept {
    return m->role;
}

const public_key& secure_channel::peer() const {
    assert(m->ph == phase::established);
    return m->peer;
}

} // namespace glasnode::overlay
