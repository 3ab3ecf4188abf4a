// Fuzz target for the frame decoder, the message envelope, every core typed message and the
// canonical checker.
//
// Input: byte 0 picks how the rest is split across frame_decoder::feed() calls; the rest is a
// frame stream. Every completed frame, and the whole rest as one payload, goes through
// decode_envelope, every typed decoder and check_canonical. Invariants that must hold on any
// input abort the process (the fuzzer reports it):
//   - a canonical payload that decodes to a typed message re-encodes to the same bytes;
//   - a decoded message survives encode -> decode unchanged;
//   - check_canonical and decode_canonical agree.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "overlay/wire/canonical.hpp"
#include "overlay/wire/core_messages.hpp"
#include "overlay/wire/frame.hpp"
#include "overlay/wire/message.hpp"

namespace {

using namespace glasnode;
using namespace glasnode::wire;

void require(bool condition) {
    if (!condition)
        std::abort();
}

bool same(const hello& a, const hello& b) {
    return a.channel_version == b.channel_version && a.static_key == b.static_key &&
           a.kx_key == b.kx_key && a.nonce == b.nonce;
}
bool same(const auth& a, const auth& b) {
    return a.signature == b.signature;
}
bool same(const ping& a, const ping& b) {
    return a.nonce == b.nonce;
}
bool same(const pong& a, const pong& b) {
    return a.nonce == b.nonce;
}
bool same(const error_message& a, const error_message& b) {
    return a.code == b.code && a.reason == b.reason;
}

template <class M>
void try_typed(const envelope& env, byte_view payload, bool canonical) {
    // Every decoder sees every body, whatever the envelope's type says.
    auto m = M::decode(env.body());
    if (!m)
        return;
    const bytes again = encode_message(*m);
    auto round = decode_message<M>(again);
    require(round.ok());
    require(same(*m, *round));
    if (canonical && env.type() == M::type_id) {
        require(again.size() == payload.size() &&
                std::equal(again.begin(), again.end(), payload.begin()));
    }
}

void decode_payload(byte_view payload, const message_registry& registry) {
    const status canonical = check_canonical(payload);
    require(canonical.ok() == decode_canonical(payload).ok());
    auto env = decode_envelope(payload, registry);
    if (!env) {
        require(!env.err().reason.empty());
        return;
    }
    require(env->body().type == msgpack::type::ARRAY);
    require(registry.contains(env->type()));
    try_typed<hello>(*env, payload, canonical.ok());
    try_typed<auth>(*env, payload, canonical.ok());
    try_typed<ping>(*env, payload, canonical.ok());
    try_typed<pong>(*env, payload, canonical.ok());
    try_typed<error_message>(*env, payload, canonical.ok());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const message_registry registry = core_message_registry();
    if (size == 0)
        return 0;
    const std::size_t step = data[0] % 32 + 1;
    const byte_view in(data + 1, size - 1);

    frame_decoder decoder(16 * 1024);
    std::vector<bytes> frames;
    for (std::size_t at = 0; at < in.size(); at += step) {
        const std::size_t before = frames.size();
        const status s = decoder.feed(in.subspan(at, std::min(step, in.size() - at)), frames);
        for (std::size_t i = before; i < frames.size(); ++i)
            require(frames[i].size() <= 16 * 1024);
        if (!s) {
            require(decoder.failed());
            break;
        }
        require(decoder.buffered() <= 16 * 1024 + frame_header_size);
    }
    for (const bytes& f : frames)
        decode_payload(f, registry);
    decode_payload(in, registry);
    return 0;
}
