// A channel initiator written from the protocol description in
// overlay/channel/secure_channel.hpp, independent of secure_channel, so that tests can make it
// lie: present one key in hello and sign auth with another. An honest run of it must
// establish (tests/overlay checks that), which keeps it faithful to the protocol.
#pragma once

#include <array>
#include <string_view>

#include <gtest/gtest.h>
#include <sodium.h>

#include "overlay/channel/secure_channel.hpp"
#include "overlay/identity/identity.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/frame.hpp"

namespace glasnode::test_support {

using overlay::channel_role;
using overlay::identity;
using overlay::public_key;

class scripted_initiator {
public:
    explicit scripted_initiator(const public_key& presented, std::uint64_t version = 1) {
        std::array<std::uint8_t, crypto_kx_SEEDBYTES> seed{};
        seed.fill(0x77);
        crypto_kx_seed_keypair(m_kx_pk.data(), m_kx_sk.data(), seed.data());
        wire::hello h;
        h.channel_version = version;
        h.static_key = presented;
        h.kx_key = m_kx_pk;
        h.nonce.fill(0x99);
        m_hello = wire::encode_message(h);
    }
    void override_kx_key(const wire::key_bytes& key) {
        auto h = wire::decode_message<wire::hello>(m_hello);
        h->kx_key = key;
        m_hello = wire::encode_message(*h);
    }

    bytes hello_frame() const {
        bytes out;
        wire::append_frame(out, m_hello);
        return out;
    }

    bytes auth_frame(const bytes& responder_hello, const identity& signer) {
        auto h = wire::decode_message<wire::hello>(responder_hello);
        EXPECT_TRUE(h.ok());
        EXPECT_EQ(crypto_kx_client_session_keys(m_rx.data(), m_tx.data(), m_kx_pk.data(),
                                                m_kx_sk.data(), h->kx_key.data()),
                  0);
        std::array<std::uint8_t, 32> th{};
        crypto_generichash_state hs;
        crypto_generichash_init(&hs, nullptr, 0, th.size());
        const std::string_view domain = "glasnode/channel/v1/transcript";
        crypto_generichash_update(&hs, reinterpret_cast<const std::uint8_t*>(domain.data()),
                                  domain.size());
        for (const bytes* part : {static_cast<const bytes*>(&m_hello), &responder_hello}) {
            const std::uint32_t n = static_cast<std::uint32_t>(part->size());
            const std::uint8_t le[4] = {
                static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8),
                static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 24)};
            crypto_generichash_update(&hs, le, 4);
            crypto_generichash_update(&hs, part->data(), part->size());
        }
        crypto_generichash_final(&hs, th.data(), th.size());
        const std::string_view auth_domain = "glasnode/channel/v1/auth";
        bytes signed_part(auth_domain.begin(), auth_domain.end());
        signed_part.push_back(static_cast<std::uint8_t>(channel_role::initiator));
        signed_part.insert(signed_part.end(), th.begin(), th.end());
        wire::auth a;
        a.signature = signer.sign(signed_part);
        return encrypt(wire::encode_message(a));
    }

    bytes encrypt(const bytes& plain) {
        std::array<std::uint8_t, 12> nonce{};
        for (int i = 0; i < 8; ++i)
            nonce[4 + i] = static_cast<std::uint8_t>(m_counter >> (8 * i));
        ++m_counter;
        bytes ct(plain.size() + crypto_aead_chacha20poly1305_ietf_ABYTES);
        unsigned long long n = 0;
        crypto_aead_chacha20poly1305_ietf_encrypt(ct.data(), &n, plain.data(), plain.size(),
                                                  nullptr, 0, nullptr, nonce.data(), m_tx.data());
        bytes out;
        wire::append_frame(out, ct);
        return out;
    }

private:
    std::array<std::uint8_t, 32> m_kx_pk{}, m_kx_sk{}, m_rx{}, m_tx{};
    bytes m_hello;
    std::uint64_t m_counter = 0;
};

} // namespace glasnode::test_support
