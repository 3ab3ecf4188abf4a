// Fuzz target for the secure channel's receive path.
//
// Byte 0 picks the scenario, byte 1 the split of the rest across receive() calls:
//   0: the rest is a raw stream to a fresh responder (framing + hello decoding);
//   1: the rest is one frame payload to a fresh responder (hello/error decoding);
//   2: the rest is a raw stream to a responder that completed a real handshake
//      (decryption of established-phase frames);
//   3: the rest, cut into messages by length bytes, is sent by a real initiator; the responder
//      must deliver exactly those messages, in order (those drained under back-pressure
//      included), which then go through decode_envelope as a driver would do.
// The channel must never crash, never deliver a message it did not authenticate, and keep
// failure sticky.
#include "overlay/channel/secure_channel.hpp"

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/frame.hpp"

namespace {

using namespace glasnode;
using namespace glasnode::overlay;

void require(bool condition) {
    if (!condition)
        std::abort();
}

const identity& responder_identity() {
    static const identity id = [] {
        key_seed seed{};
        seed.fill(0x52);
        return identity::from_seed(seed);
    }();
    return id;
}

const identity& initiator_identity() {
    static const identity id = [] {
        key_seed seed{};
        seed.fill(0x49);
        return identity::from_seed(seed);
    }();
    return id;
}

constexpr channel_limits limits{.max_frame = 4096, .max_pending_messages = 64};

// Offers `in` in pieces of `step` bytes. Messages drained to relieve back-pressure are
// appended to `drained` (when given) in delivery order, so the caller sees every message.
void feed(secure_channel& ch, byte_view in, std::size_t step,
          std::vector<bytes>* drained = nullptr) {
    for (std::size_t at = 0; at < in.size(); at += step) {
        const status s = ch.receive(in.subspan(at, std::min(step, in.size() - at)));
        if (!s) {
            if (s.err().code == errc::busy && !ch.failed()) {
                // Back-pressure: drain, then offer the same bytes again.
                auto first = ch.next_message();
                require(first.has_value());
                if (drained != nullptr)
                    drained->push_back(std::move(*first));
                while (auto m = ch.next_message()) {
                    if (drained != nullptr)
                        drained->push_back(std::move(*m));
                }
                at -= step;
                continue;
            }
            require(ch.failed());
            require(ch.receive(byte_view{}).err().reason == s.err().reason);
            return;
        }
    }
}

void handshake(secure_channel& a, secure_channel& b) {
    for (int round = 0; round < 4; ++round) {
        const bytes ab = a.take_output();
        const bytes ba = b.take_output();
        require(b.receive(ab).ok());
        require(a.receive(ba).ok());
    }
    require(a.established() && b.established());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const wire::message_registry registry = wire::core_message_registry();
    if (size < 2)
        return 0;
    const int scenario = data[0] % 4;
    const std::size_t step = data[1] % 64 + 1;
    const byte_view in(data + 2, size - 2);

    seeded_random responder_rng(1);
    secure_channel responder(channel_role::responder, responder_identity(), responder_rng, limits);
    if (scenario == 0) {
        feed(responder, in, step);
        require(!responder.established());
        require(!responder.next_message());
        return 0;
    }
    if (scenario == 1) {
        if (in.size() > limits.max_frame)
            return 0;
        bytes frame;
        wire::append_frame(frame, in);
        feed(responder, frame, step);
        require(!responder.established());
        return 0;
    }

    seeded_random initiator_rng(2);
    secure_channel initiator(channel_role::initiator, initiator_identity(), initiator_rng, limits);
    handshake(initiator, responder);
    if (scenario == 2) {
        feed(responder, in, step);
        // Nothing the fuzzer wrote can authenticate under the session key.
        require(!responder.next_message());
        return 0;
    }

    std::vector<bytes> sent;
    for (std::size_t at = 0; at < in.size();) {
        const std::size_t n = std::min<std::size_t>(in[at], in.size() - at - 1);
        const byte_view message = in.subspan(at + 1, n);
        at += 1 + n;
        require(initiator.send(message).ok());
        sent.emplace_back(message.begin(), message.end());
    }
    std::vector<bytes> received;
    feed(responder, initiator.take_output(), step, &received);
    require(!responder.failed());
    while (auto m = responder.next_message())
        received.push_back(std::move(*m));
    // Exactly what was sent, each message whole, in order, none lost or repeated.
    require(received == sent);
    for (const bytes& m : received)
        (void)wire::decode_envelope(m, registry);
    return 0;
}
