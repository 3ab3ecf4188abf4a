// libFuzzer target for test negotiation.
//
// 1. The whole input is decoded as every negotiation message (and as a provider reply). A
//    message that decodes must re-encode to bytes that decode to the same value.
// 2. The input is then read as a script driving one provider: encoded payloads (arbitrary or
//    built from well-formed requests) on a few sessions, cancels, closes, time steps with
//    expiry, flow authorisations and flow reports. After every step the provider's bounds must
//    hold, every message it sends must decode as a provider reply, and its events must be
//    consistent (a test is granted at most once and finishes at most once).
// Any violation aborts.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <variant>
#include <vector>

#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests_proto/negotiation/agent.hpp"
#include "tests_proto/negotiation/messages.hpp"
#include "tests_proto/negotiation/provider.hpp"

using namespace glasnode;
using namespace glasnode::proto::negotiation;

namespace {

void require(bool condition) {
    if (!condition)
        std::abort();
}

template <class M>
void round_trip(const wire::envelope& env) {
    auto m = wire::decode_body<M>(env);
    if (!m)
        return;
    auto again = wire::decode_message<M>(wire::encode_message(*m));
    require(again.ok());
    require(*again == *m);
}

void check_decoders(byte_view in) {
    static const wire::message_registry all = [] {
        wire::message_registry r;
        require(add_negotiation_messages(r).ok());
        return r;
    }();
    (void)decode_provider_reply(in);
    auto env = wire::decode_envelope(in, all);
    if (!env)
        return;
    round_trip<negotiate>(*env);
    round_trip<queue_status>(*env);
    round_trip<grant>(*env);
    round_trip<collect>(*env);
    round_trip<collect_reply>(*env);
    round_trip<cancel>(*env);
}

flow_spec spec_from(fuzz::fuzz_input& s, std::uint16_t index) {
    flow_spec f;
    f.index = index;
    const std::uint8_t bits = s.u8();
    f.dir = (bits & 1) != 0 ? direction::upload : direction::download;
    f.port = (bits & 2) != 0 ? test_port::neutral : test_port::bt;
    f.kind = (bits & 4) != 0 ? flow_kind::control : flow_kind::bt;
    f.group = static_cast<std::uint16_t>(s.u8() % 8);
    f.duration_ms = 400u + s.u16();
    return f;
}

flow_measurement measurement_from(fuzz::fuzz_input& s) {
    flow_measurement m;
    m.index = s.u8();
    m.end = static_cast<flow_end>(s.u8() % (max_flow_end + 1));
    m.payload_bytes = s.u32();
    m.sample_interval_us = s.u16();
    m.samples.resize(s.u16() % 1500, s.u8());
    m.congestion_control = (s.u8() & 1) != 0 ? "cubic" : "";
    return m;
}

struct tracker {
    std::map<session_id, token_t> running;
    std::vector<token_t> tokens;
};

void check_effects(const effects& out, const provider& p, tracker& t) {
    for (const effect& e : out) {
        if (const auto* s = std::get_if<send_message>(&e)) {
            require(decode_provider_reply(s->message).ok());
        } else if (const auto* g = std::get_if<test_granted>(&e)) {
            require(t.running.emplace(g->session, g->token).second);
            t.tokens.push_back(g->token);
        } else if (const auto* f = std::get_if<test_finished>(&e)) {
            const auto it = t.running.find(f->session);
            require(it != t.running.end() && it->second == f->token);
            require(f->provider_measurements.size() <= max_schedule_flows);
            t.running.erase(it);
        }
    }
    require(p.running() <= p.options().max_active);
    require(p.waiting() <= p.options().max_queue);
    require(p.running() == t.running.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const byte_view in(data, size);
    check_decoders(in);

    fuzz::fuzz_input s(in);
    seeded_random random(s.u8());
    provider_options options;
    options.max_queue = 1 + s.u8() % 4;
    options.max_active = 1 + s.u8() % 2;
    options.remembered_tests = s.u8() % 4;
    provider p(options, random);
    tracker t;
    time_point now{};
    int steps = 0;
    while (!s.done() && steps++ < 64) {
        const std::uint8_t op = s.u8();
        const session_id session = s.u8() % 4;
        effects out;
        switch (op % 9) {
        case 0: // arbitrary bytes as a request
            out = p.receive(now, session, s.take(s.u8()));
            break;
        case 1: { // a well-formed negotiate, possibly out of bounds
            negotiate m;
            const std::uint8_t flows = s.u8() % 12;
            for (std::uint16_t i = 0; i < flows; ++i)
                m.schedule.push_back(spec_from(s, static_cast<std::uint16_t>(i ^ (s.u8() % 3))));
            out = p.receive(now, session, wire::encode_message(m));
            break;
        }
        case 2: {
            collect c;
            const std::uint8_t n = s.u8() % 4;
            for (std::uint8_t i = 0; i < n; ++i)
                c.measurements.push_back(measurement_from(s));
            auto bytes_or = make_collect(c.measurements);
            out = bytes_or ? p.receive(now, session, *bytes_or) : p.on_collect(now, session, c);
            break;
        }
        case 3:
            out = p.receive(now, session, make_cancel());
            break;
        case 4:
            out = p.on_session_closed(now, session);
            break;
        case 5: {
            const time_point before = now;
            now += std::chrono::milliseconds(std::uint64_t{s.u16()} * 64);
            require(now >= before);
            if (auto e = p.next_expiry(); e && *e <= now)
                out = p.handle_expiry(now);
            break;
        }
        case 6: { // a flow of a granted test (live or not), or a stranger
            info_hash_t ih{};
            if (!t.tokens.empty() && (op & 0x80) == 0)
                ih = flow_info_hash(t.tokens[s.u8() % t.tokens.size()], s.u8() % 16);
            else
                ih.fill(s.u8());
            const flow_kind kind = (op & 0x40) != 0 ? flow_kind::control : flow_kind::bt;
            const flow_authorization a = p.authorize_flow(now, kind, ih);
            if (const auto* f = std::get_if<flow_assignment>(&a)) {
                require(f->spec.kind == kind);
                require(f->deadline > now);
                require(t.running.count(f->session) == 1);
            }
            break;
        }
        case 7: { // a flow report, by (session, index) or by a granted test's info-hash
            // Its effects answer a held collect (test_finished): they are checked like any.
            result<effects> reported = [&] {
                if ((op & 0x80) != 0 && !t.tokens.empty()) {
                    const info_hash_t ih =
                        flow_info_hash(t.tokens[s.u8() % t.tokens.size()], s.u8() % 16);
                    return p.on_flow_finished(now, ih, measurement_from(s));
                }
                const std::uint16_t index = s.u8() % 16;
                return p.on_flow_finished(now, session, index, measurement_from(s));
            }();
            if (reported.ok())
                out = std::move(*reported);
            break;
        }
        default:
            out = p.handle_expiry(now);
            break;
        }
        check_effects(out, p, t);
        if (auto e = p.next_expiry())
            require(!t.running.empty());
    }
    return 0;
}
