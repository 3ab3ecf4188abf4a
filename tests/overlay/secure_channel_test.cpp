#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sodium.h>

#include "overlay/channel/secure_channel.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/frame.hpp"
#include "tests/support/scripted_initiator.hpp"

namespace glasnode::overlay {
namespace {

using test_support::scripted_initiator;

// Delivers `data` in chunks of `chunk` bytes (0: all at once); stops at the first error.
status deliver(secure_channel& to, const bytes& data, std::size_t chunk = 0) {
    if (chunk == 0)
        return to.receive(data);
    for (std::size_t at = 0; at < data.size(); at += chunk) {
        const std::size_t n = std::min(chunk, data.size() - at);
        if (auto s = to.receive(byte_view(data).subspan(at, n)); !s)
            return s;
    }
    return {};
}

// Moves output between the two sides until both are quiet; `record` keeps what flowed.
void pump(secure_channel& a, secure_channel& b, std::size_t chunk = 0, bytes* a_sent = nullptr,
          bytes* b_sent = nullptr) {
    for (int round = 0; round < 8; ++round) {
        const bytes ab = a.take_output();
        const bytes ba = b.take_output();
        if (ab.empty() && ba.empty())
            return;
        if (a_sent)
            a_sent->insert(a_sent->end(), ab.begin(), ab.end());
        if (b_sent)
            b_sent->insert(b_sent->end(), ba.begin(), ba.end());
        (void)deliver(b, ab, chunk);
        (void)deliver(a, ba, chunk);
    }
    FAIL() << "channels kept talking";
}

std::vector<bytes> split_frames(const bytes& stream) {
    wire::frame_decoder d(1 << 20);
    std::vector<bytes> frames;
    EXPECT_TRUE(d.feed(stream, frames).ok());
    return frames;
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

std::vector<bytes> drain(secure_channel& c) {
    std::vector<bytes> out;
    while (auto m = c.next_message())
        out.push_back(std::move(*m));
    return out;
}

class channel_test : public ::testing::Test {
protected:
    seeded_random m_id_rng{100};
    identity m_alice = identity::generate(m_id_rng);
    identity m_bob = identity::generate(m_id_rng);
    identity m_mallory = identity::generate(m_id_rng);
    seeded_random m_rng_a{1};
    seeded_random m_rng_b{2};
};

TEST_F(channel_test, handshake_and_messages_one_byte_at_a_time_both_ways) {
    for (bool alice_dials : {true, false}) {
        for (std::size_t chunk : {1u, 0u, 5u}) {
            seeded_random ra(10 + chunk), rb(20 + chunk);
            secure_channel a(alice_dials ? channel_role::initiator : channel_role::responder,
                             m_alice, ra);
            secure_channel b(alice_dials ? channel_role::responder : channel_role::initiator, m_bob,
                             rb);
            EXPECT_FALSE(a.established());
            pump(a, b, chunk);
            ASSERT_TRUE(a.established()) << (a.failed() ? a.failure().describe() : "");
            ASSERT_TRUE(b.established()) << (b.failed() ? b.failure().describe() : "");
            EXPECT_EQ(a.peer(), m_bob.key());
            EXPECT_EQ(b.peer(), m_alice.key());

            ASSERT_TRUE(a.send(as_bytes("to bob 1")).ok());
            ASSERT_TRUE(a.send(bytes{}).ok());
            ASSERT_TRUE(a.send(as_bytes("to bob 2")).ok());
            ASSERT_TRUE(b.send(as_bytes("to alice")).ok());
            pump(a, b, chunk);
            const auto to_bob = drain(b);
            ASSERT_EQ(to_bob.size(), 3u);
            EXPECT_EQ(std::string(to_bob[0].begin(), to_bob[0].end()), "to bob 1");
            EXPECT_TRUE(to_bob[1].empty());
            EXPECT_EQ(std::string(to_bob[2].begin(), to_bob[2].end()), "to bob 2");
            const auto to_alice = drain(a);
            ASSERT_EQ(to_alice.size(), 1u);
            EXPECT_EQ(std::string(to_alice[0].begin(), to_alice[0].end()), "to alice");
            EXPECT_FALSE(a.failed());
            EXPECT_FALSE(b.failed());
        }
    }
}

TEST_F(channel_test, roles_are_reported) {
    secure_channel a(channel_role::initiator, m_alice, m_rng_a);
    secure_channel b(channel_role::responder, m_bob, m_rng_b);
    EXPECT_EQ(a.role(), channel_role::initiator);
    EXPECT_EQ(b.role(), channel_role::responder);
}

TEST_F(channel_test, hello_is_queued_at_construction) {
    secure_channel a(channel_role::initiator, m_alice, m_rng_a);
    const auto frames = split_frames(a.take_output());
    ASSERT_EQ(frames.size(), 1u);
    auto h = wire::decode_message<wire::hello>(frames[0]);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->static_key, m_alice.key());
    EXPECT_EQ(h->channel_version, 1u);
    EXPECT_TRUE(a.take_output().empty());
}

// Sets up an established pair (same seeds every time, so the same bytes every time).
struct established_pair {
    established_pair(const identity& a_id, const identity& b_id, channel_limits limits = {})
        : ra(1), rb(2), a(channel_role::initiator, a_id, ra, limits),
          b(channel_role::responder, b_id, rb, limits) {
        pump(a, b);
    }
    seeded_random ra, rb;
    secure_channel a, b;
};

TEST_F(channel_test, every_single_byte_flip_of_an_encrypted_frame_fails) {
    const std::string_view text = "measure me, please";
    const bytes message(text.begin(), text.end());
    std::size_t frame_size = 0;
    {
        established_pair p(m_alice, m_bob);
        ASSERT_TRUE(p.a.send(message).ok());
        frame_size = p.a.take_output().size();
    }
    ASSERT_EQ(frame_size, 4 + message.size() + 16);
    for (std::size_t i = 0; i < frame_size; ++i) {
        established_pair p(m_alice, m_bob);
        ASSERT_TRUE(p.b.established());
        ASSERT_TRUE(p.a.send(message).ok());
        bytes frame = p.a.take_output();
        frame[i] ^= 0x01;
        const status s = p.b.receive(frame);
        EXPECT_TRUE(drain(p.b).empty()) << "byte " << i;
        if (i < 4) {
            // A different length: either a shorter frame that fails authentication, or a
            // longer one still waiting for bytes; never a delivered message.
            if (!s.ok()) {
                EXPECT_TRUE(p.b.failed());
            }
            continue;
        }
        ASSERT_FALSE(s.ok()) << "byte " << i;
        EXPECT_TRUE(p.b.failed());
        EXPECT_EQ(s.err().code, errc::auth_failed);
        EXPECT_EQ(s.err().reason, "frame 1 from " + short_id(m_alice.key()) +
                                      " failed authentication (altered, replayed or reordered)");
    }
}

TEST_F(channel_test, replayed_frame_fails) {
    established_pair p(m_alice, m_bob);
    ASSERT_TRUE(p.a.send(as_bytes("once")).ok());
    const bytes frame = p.a.take_output();
    ASSERT_TRUE(p.b.receive(frame).ok());
    EXPECT_EQ(drain(p.b).size(), 1u);
    const status s = p.b.receive(frame);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::auth_failed);
    EXPECT_TRUE(contains(s.err().reason, "frame 2 from")) << s.err().reason;
    EXPECT_TRUE(drain(p.b).empty());
}

TEST_F(channel_test, reordered_frames_fail) {
    established_pair p(m_alice, m_bob);
    ASSERT_TRUE(p.a.send(as_bytes("first")).ok());
    const bytes first = p.a.take_output();
    ASSERT_TRUE(p.a.send(as_bytes("second")).ok());
    const bytes second = p.a.take_output();
    const status s = p.b.receive(second);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(contains(s.err().reason, "frame 1 from")) << s.err().reason;
    EXPECT_FALSE(p.b.receive(first).ok());
    EXPECT_TRUE(drain(p.b).empty());
}

TEST_F(channel_test, dropped_frame_fails_the_next_one) {
    established_pair p(m_alice, m_bob);
    ASSERT_TRUE(p.a.send(as_bytes("lost")).ok());
    (void)p.a.take_output();
    ASSERT_TRUE(p.a.send(as_bytes("next")).ok());
    EXPECT_FALSE(p.b.receive(p.a.take_output()).ok());
}

TEST_F(channel_test, scripted_initiator_completes_when_honest) {
    // Validates the scripted peer used by the tests below.
    secure_channel bob(channel_role::responder, m_bob, m_rng_b);
    const bytes bob_hello = split_frames(bob.take_output()).at(0);
    scripted_initiator honest(m_alice.key());
    ASSERT_TRUE(bob.receive(honest.hello_frame()).ok());
    ASSERT_TRUE(bob.receive(honest.auth_frame(bob_hello, m_alice)).ok());
    ASSERT_TRUE(bob.established());
    EXPECT_EQ(bob.peer(), m_alice.key());
    ASSERT_TRUE(bob.receive(honest.encrypt(bytes{1, 2, 3})).ok());
    EXPECT_EQ(bob.next_message(), (bytes{1, 2, 3}));
}

TEST_F(channel_test, peer_presenting_a_key_it_cannot_sign_for_fails) {
    secure_channel bob(channel_role::responder, m_bob, m_rng_b);
    const bytes bob_hello = split_frames(bob.take_output()).at(0);
    // Mallory presents Alice's public key but can only sign with her own.
    scripted_initiator liar(m_alice.key());
    ASSERT_TRUE(bob.receive(liar.hello_frame()).ok());
    const status s = bob.receive(liar.auth_frame(bob_hello, m_mallory));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::auth_failed);
    EXPECT_EQ(s.err().reason, "handshake: auth signature does not verify for presented key " +
                                  short_id(m_alice.key()));
    EXPECT_FALSE(bob.established());
    EXPECT_TRUE(bob.failed());
}

TEST_F(channel_test, replayed_initiator_handshake_fails_at_a_fresh_responder) {
    bytes recorded;
    {
        established_pair p(m_alice, m_bob);
        // Re-run a handshake recording everything Alice sends.
        seeded_random ra(5), rb(6);
        secure_channel a(channel_role::initiator, m_alice, ra);
        secure_channel b(channel_role::responder, m_bob, rb);
        pump(a, b, 0, &recorded, nullptr);
        ASSERT_TRUE(b.established());
        ASSERT_TRUE(a.send(as_bytes("ordinary traffic")).ok());
        const bytes more = a.take_output();
        recorded.insert(recorded.end(), more.begin(), more.end());
    }
    // A responder with fresh randomness (as every real one has) receives the recording.
    seeded_random fresh(7);
    secure_channel victim(channel_role::responder, m_bob, fresh);
    const status s = victim.receive(recorded);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::auth_failed);
    EXPECT_EQ(s.err().reason, "handshake: auth frame from " + short_id(m_alice.key()) +
                                  " failed authentication (no shared session key: replayed or "
                                  "altered handshake)");
    EXPECT_FALSE(victim.established());
    EXPECT_TRUE(drain(victim).empty());
}

TEST_F(channel_test, expect_peer_mismatch_and_match) {
    {
        secure_channel a(channel_role::initiator, m_alice, m_rng_a);
        secure_channel b(channel_role::responder, m_bob, m_rng_b);
        a.expect_peer(m_mallory.key());
        pump(a, b);
        ASSERT_TRUE(a.failed());
        EXPECT_EQ(a.failure().code, errc::auth_failed);
        EXPECT_EQ(a.failure().reason, "handshake: peer presented key " + short_id(m_bob.key()) +
                                          " but " + short_id(m_mallory.key()) + " was expected");
        EXPECT_FALSE(b.established()) << "a refusing initiator never sends its auth";
    }
    {
        seeded_random ra(3), rb(4);
        secure_channel a(channel_role::initiator, m_alice, ra);
        secure_channel b(channel_role::responder, m_bob, rb);
        a.expect_peer(m_bob.key());
        pump(a, b);
        EXPECT_TRUE(a.established());
        EXPECT_TRUE(b.established());
        a.expect_peer(m_mallory.key()); // too late, and wrong: fails the channel
        EXPECT_TRUE(a.failed());
    }
}

TEST_F(channel_test, peer_presenting_our_own_key_is_refused) {
    secure_channel a(channel_role::initiator, m_alice, m_rng_a);
    secure_channel b(channel_role::responder, m_alice, m_rng_b);
    pump(a, b);
    ASSERT_TRUE(a.failed());
    ASSERT_TRUE(b.failed());
    EXPECT_EQ(b.failure().reason, "handshake: peer presented our own key");
}

TEST_F(channel_test, oversized_frames) {
    channel_limits small;
    small.max_frame = 1024;
    established_pair p(m_alice, m_bob, small);
    ASSERT_TRUE(p.b.established());

    const status too_big = p.a.send(bytes(1024 - 15));
    ASSERT_FALSE(too_big.ok());
    EXPECT_EQ(too_big.err().code, errc::invalid_argument);
    EXPECT_FALSE(p.a.failed()) << "refusing to send is not a channel failure";
    ASSERT_TRUE(p.a.send(bytes(1024 - 16, 0x42)).ok());
    ASSERT_TRUE(p.b.receive(p.a.take_output()).ok());
    auto m = p.b.next_message();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->size(), 1024u - 16);

    const bytes header{0x00, 0x00, 0x04, 0x01}; // 1025 bytes announced
    const status s = p.b.receive(header);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::limit_exceeded);
    EXPECT_EQ(s.err().reason, "framing: frame length 1025 exceeds limit 1024");
}

TEST_F(channel_test, send_before_established_is_refused_without_failing) {
    secure_channel a(channel_role::initiator, m_alice, m_rng_a);
    secure_channel b(channel_role::responder, m_bob, m_rng_b);
    const status s = a.send(as_bytes("too early"));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::invalid_argument);
    EXPECT_FALSE(a.failed());
    pump(a, b);
    ASSERT_TRUE(a.established());
    EXPECT_TRUE(a.send(as_bytes("now")).ok());
}

TEST_F(channel_test, same_seeds_give_the_same_bytes) {
    auto run = [&](std::uint64_t seed_a) {
        seeded_random ra(seed_a), rb(2);
        secure_channel a(channel_role::initiator, m_alice, ra);
        secure_channel b(channel_role::responder, m_bob, rb);
        bytes a_sent, b_sent;
        pump(a, b, 0, &a_sent, &b_sent);
        EXPECT_TRUE(a.send(as_bytes("x")).ok());
        EXPECT_TRUE(b.send(as_bytes("y")).ok());
        pump(a, b, 0, &a_sent, &b_sent);
        return std::make_pair(a_sent, b_sent);
    };
    const auto first = run(1);
    const auto second = run(1);
    EXPECT_EQ(first, second);
    EXPECT_GT(first.first.size(), 100u);
    const auto other = run(9);
    EXPECT_NE(first.first, other.first);
    EXPECT_NE(first.second, other.second) << "the responder's keys depend on the initiator's";
}

TEST_F(channel_test, garbage_instead_of_hello) {
    {
        secure_channel b(channel_role::responder, m_bob, m_rng_b);
        const status s = b.receive(as_bytes("GET / HTTP/1.1\r\n"));
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().code, errc::limit_exceeded);
        EXPECT_TRUE(contains(s.err().reason, "framing: frame length")) << s.err().reason;
    }
    {
        secure_channel b(channel_role::responder, m_bob, m_rng_b);
        bytes frame;
        wire::append_frame(frame, as_bytes("\xc1\xc1"));
        const status s = b.receive(frame);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().reason, "handshake: message: malformed msgpack");
    }
    {
        secure_channel b(channel_role::responder, m_bob, m_rng_b);
        bytes frame;
        wire::append_frame(frame, wire::encode_message(wire::ping{.nonce = 1}));
        const status s = b.receive(frame);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().code, errc::protocol_error);
        EXPECT_EQ(s.err().reason, "handshake: message: unknown message type 3 (core range)");
    }
}

TEST_F(channel_test, peer_error_during_handshake_is_reported) {
    secure_channel b(channel_role::responder, m_bob, m_rng_b);
    wire::error_message e;
    e.code = static_cast<std::uint16_t>(wire::wire_error::busy);
    e.reason = "queue full";
    bytes frame;
    wire::append_frame(frame, wire::encode_message(e));
    const status s = b.receive(frame);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::busy);
    EXPECT_EQ(s.err().reason, "handshake: peer refused with error 3: queue full");
}

TEST_F(channel_test, unsupported_channel_version_and_unusable_kx_key) {
    {
        secure_channel bob(channel_role::responder, m_bob, m_rng_b);
        scripted_initiator future(m_alice.key(), 2);
        const status s = bob.receive(future.hello_frame());
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().code, errc::unsupported_version);
        EXPECT_EQ(s.err().reason, "handshake: peer speaks channel version 2 (this node speaks 1)");
    }
    {
        secure_channel bob(channel_role::responder, m_bob, m_rng_b);
        scripted_initiator weak(m_alice.key());
        weak.override_kx_key(wire::key_bytes{}); // all zero: a small-order point
        const status s = bob.receive(weak.hello_frame());
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().code, errc::protocol_error);
        EXPECT_TRUE(contains(s.err().reason, "is unusable")) << s.err().reason;
    }
}

TEST_F(channel_test, pending_messages_are_bounded) {
    channel_limits limits;
    limits.max_pending_messages = 3;
    established_pair p(m_alice, m_bob, limits);
    std::vector<bytes> frames;
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(p.a.send(bytes{static_cast<std::uint8_t>(i)}).ok());
        frames.push_back(p.a.take_output());
    }
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(p.b.receive(frames[i]).ok());
    const status busy = p.b.receive(frames[3]);
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.err().code, errc::busy);
    EXPECT_FALSE(p.b.failed()) << "busy is back-pressure, not a failure";
    EXPECT_EQ(p.b.next_message(), bytes{0});
    ASSERT_TRUE(p.b.receive(frames[3]).ok()) << "the refused bytes are offered again";
    EXPECT_FALSE(p.b.receive(frames[4]).ok());
    EXPECT_EQ(drain(p.b), (std::vector<bytes>{bytes{1}, bytes{2}, bytes{3}}));
    ASSERT_TRUE(p.b.receive(frames[4]).ok());
    EXPECT_EQ(p.b.next_message(), bytes{4});
}

TEST_F(channel_test, failure_is_sticky) {
    established_pair p(m_alice, m_bob);
    ASSERT_TRUE(p.a.send(as_bytes("x")).ok());
    bytes frame = p.a.take_output();
    frame.back() ^= 0x80;
    const status first = p.b.receive(frame);
    ASSERT_FALSE(first.ok());
    EXPECT_EQ(p.b.receive(bytes{}).err().reason, first.err().reason);
    EXPECT_EQ(p.b.send(as_bytes("y")).err().reason, first.err().reason);
    EXPECT_EQ(p.b.failure().reason, first.err().reason);
    EXPECT_FALSE(p.b.established());
}

} // namespace
} // namespace glasnode::overlay
