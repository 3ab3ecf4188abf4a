#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/wire/core_messages.hpp"
#include "tests_proto/negotiation/messages.hpp"

namespace glasnode::proto::negotiation {
namespace {

// An envelope of `type` whose body `write_body` packs by hand, for shapes the typed encoders
// never produce.
bytes raw_message(wire::message_type type, const std::function<void(wire::packer&)>& write_body) {
    bytes out;
    wire::byte_sink sink(out);
    wire::packer pk(sink);
    pk.pack_array(3);
    pk.pack_uint64(wire::protocol_version);
    pk.pack_uint16(type);
    write_body(pk);
    return out;
}

using wire::pack_str;

void pack_spec(wire::packer& pk, std::uint64_t dir, std::uint64_t port, std::uint64_t kind) {
    pk.pack_array(6);
    pk.pack_uint16(0);
    pk.pack_uint64(dir);
    pk.pack_uint64(port);
    pk.pack_uint64(kind);
    pk.pack_uint16(0);
    pk.pack_uint32(1000);
}

flow_measurement full_measurement(std::uint16_t index, std::size_t samples) {
    flow_measurement m;
    m.index = index;
    m.role = flow_role::leech;
    m.end = flow_end::reset_received;
    m.bytes_sent = 123'456;
    m.bytes_received = std::numeric_limits<std::uint64_t>::max();
    m.payload_bytes = 99'999;
    m.connect_time_us = 1'500;
    m.duration_us = 5'000'000;
    m.sample_interval_us = 50'000;
    for (std::size_t i = 0; i < samples; ++i)
        m.samples.push_back(i * 1000 + 7);
    m.resets_sent = 1;
    m.resets_received = 3;
    m.min_rtt_us = 812;
    m.retransmits = 42;
    m.congestion_control = "cubic";
    return m;
}

// A measurement packed field by field so that single fields can be made invalid.
struct raw_measurement {
    std::uint64_t role = 0;
    std::uint64_t end = 0;
    std::uint64_t connect_us = 0;
    std::size_t samples = 0;
    bool sample_as_str = false;
    std::string congestion = "bbr";

    void pack(wire::packer& pk) const {
        pk.pack_array(15);
        pk.pack_uint16(0);
        pk.pack_uint64(role);
        pk.pack_uint64(end);
        pk.pack_uint64(1);
        pk.pack_uint64(2);
        pk.pack_uint64(3);
        pk.pack_uint64(connect_us);
        pk.pack_uint64(5);
        pk.pack_uint64(6);
        pk.pack_array(static_cast<std::uint32_t>(samples));
        for (std::size_t i = 0; i < samples; ++i) {
            if (sample_as_str)
                pack_str(pk, "x");
            else
                pk.pack_uint64(i);
        }
        pk.pack_uint32(0);
        pk.pack_uint32(0);
        pk.pack_uint64(0);
        pk.pack_uint64(0);
        pack_str(pk, congestion);
    }
};

bytes collect_of(const std::vector<raw_measurement>& list,
                 wire::message_type type = collect::type_id) {
    return raw_message(type, [&](wire::packer& pk) {
        pk.pack_array(1);
        pk.pack_array(static_cast<std::uint32_t>(list.size()));
        for (const raw_measurement& m : list)
            m.pack(pk);
    });
}

template <class M>
errc decode_error(const bytes& payload) {
    auto r = wire::decode_message<M>(payload);
    EXPECT_FALSE(r.ok());
    return r.ok() ? errc::invalid_argument : r.err().code;
}

TEST(NegotiationMessages, TypesLieInTheNegotiationRange) {
    for (wire::message_type t : {negotiate::type_id, queue_status::type_id, grant::type_id,
                                 collect::type_id, collect_reply::type_id, cancel::type_id}) {
        EXPECT_EQ(wire::message_type_layer(t), "negotiation") << t;
    }
    wire::message_registry r = wire::core_message_registry();
    ASSERT_TRUE(add_negotiation_messages(r).ok());
    EXPECT_EQ(r.size(), 11u);
    EXPECT_FALSE(add_negotiation_messages(r).ok()); // duplicates are refused
}

TEST(NegotiationMessages, NegotiateRoundTripsEveryEnumValue) {
    negotiate m;
    m.test_version = 7;
    std::uint16_t i = 0;
    for (direction d : {direction::upload, direction::download})
        for (test_port p : {test_port::bt, test_port::neutral})
            for (flow_kind k : {flow_kind::bt, flow_kind::control}) {
                m.schedule.push_back(flow_spec{static_cast<std::uint16_t>(i * 1000), d, p, k,
                                               static_cast<std::uint16_t>(65535 - i),
                                               500u + i * 4000u});
                ++i;
            }
    auto back = wire::decode_message<negotiate>(wire::encode_message(m));
    ASSERT_TRUE(back.ok()) << back.err().describe();
    EXPECT_EQ(*back, m);
}

TEST(NegotiationMessages, RepliesRoundTrip) {
    const queue_status qs{3, 8};
    auto qs_back = wire::decode_message<queue_status>(wire::encode_message(qs));
    ASSERT_TRUE(qs_back.ok());
    EXPECT_EQ(*qs_back, qs);

    grant g;
    for (std::size_t k = 0; k < g.token.size(); ++k)
        g.token[k] = static_cast<std::uint8_t>(0xf0 + k);
    g.valid_for_ms = 200'000;
    auto g_back = wire::decode_message<grant>(wire::encode_message(g));
    ASSERT_TRUE(g_back.ok());
    EXPECT_EQ(*g_back, g);

    collect c{{full_measurement(0, 100), full_measurement(9, 0)}};
    c.measurements[1].congestion_control.clear();
    c.measurements[1].end = flow_end::not_run;
    auto c_back = wire::decode_message<collect>(wire::encode_message(c));
    ASSERT_TRUE(c_back.ok()) << c_back.err().describe();
    EXPECT_EQ(*c_back, c);

    collect_reply cr{{full_measurement(4, max_samples_per_flow)}, std::nullopt};
    auto cr_back = wire::decode_message<collect_reply>(wire::encode_message(cr));
    ASSERT_TRUE(cr_back.ok()) << cr_back.err().describe();
    EXPECT_EQ(*cr_back, cr);
    cr.unidentified = diff::unidentified_connections{3, 2, 0xffffffffu};
    cr_back = wire::decode_message<collect_reply>(wire::encode_message(cr));
    ASSERT_TRUE(cr_back.ok()) << cr_back.err().describe();
    EXPECT_EQ(*cr_back, cr);

    auto x_back = wire::decode_message<cancel>(wire::encode_message(cancel{}));
    EXPECT_TRUE(x_back.ok());
}

TEST(NegotiationMessages, EveryEndReasonRoundTrips) {
    for (std::uint8_t e = 0; e <= max_flow_end; ++e) {
        flow_measurement m = full_measurement(e, 3);
        m.end = static_cast<flow_end>(e);
        auto back = wire::decode_message<collect>(wire::encode_message(collect{{m}}));
        ASSERT_TRUE(back.ok());
        EXPECT_EQ(back->measurements.at(0).end, m.end);
        EXPECT_NE(to_string(m.end), "unknown");
    }
}

TEST(NegotiationMessages, NegotiateRejectsWrongTypesAndBadEnums) {
    // test version as a str
    EXPECT_EQ(decode_error<negotiate>(raw_message(negotiate::type_id,
                                                  [](wire::packer& pk) {
                                                      pk.pack_array(3);
                                                      pack_str(pk, "diff");
                                                      pack_str(pk, "1");
                                                      pk.pack_array(0);
                                                  })),
              errc::protocol_error);
    // direction 2, port 2, kind 2: each out of range
    for (int bad = 0; bad < 3; ++bad) {
        const auto payload = raw_message(negotiate::type_id, [bad](wire::packer& pk) {
            pk.pack_array(3);
            pack_str(pk, "diff");
            pk.pack_uint32(1);
            pk.pack_array(1);
            pack_spec(pk, bad == 0 ? 2 : 0, bad == 1 ? 2 : 0, bad == 2 ? 2 : 0);
        });
        EXPECT_EQ(decode_error<negotiate>(payload), errc::protocol_error) << bad;
    }
    // a flow index above u16
    EXPECT_EQ(decode_error<negotiate>(raw_message(negotiate::type_id,
                                                  [](wire::packer& pk) {
                                                      pk.pack_array(3);
                                                      pack_str(pk, "diff");
                                                      pk.pack_uint32(1);
                                                      pk.pack_array(1);
                                                      pk.pack_array(6);
                                                      pk.pack_uint64(70000);
                                                      for (int f = 0; f < 4; ++f)
                                                          pk.pack_uint8(0);
                                                      pk.pack_uint32(1000);
                                                  })),
              errc::protocol_error);
    // a flow spec with a missing field
    EXPECT_EQ(decode_error<negotiate>(raw_message(negotiate::type_id,
                                                  [](wire::packer& pk) {
                                                      pk.pack_array(3);
                                                      pack_str(pk, "diff");
                                                      pk.pack_uint32(1);
                                                      pk.pack_array(1);
                                                      pk.pack_array(5);
                                                      for (int f = 0; f < 5; ++f)
                                                          pk.pack_uint8(0);
                                                  })),
              errc::protocol_error);
    // a test name with a control character
    EXPECT_EQ(decode_error<negotiate>(raw_message(negotiate::type_id,
                                                  [](wire::packer& pk) {
                                                      pk.pack_array(3);
                                                      pack_str(pk, std::string("di\nff"));
                                                      pk.pack_uint32(1);
                                                      pk.pack_array(0);
                                                  })),
              errc::protocol_error);
}

TEST(NegotiationMessages, NegotiateRejectsOversizedNameAndSchedule) {
    const auto long_name = raw_message(negotiate::type_id, [](wire::packer& pk) {
        pk.pack_array(3);
        pack_str(pk, std::string(max_test_name + 1, 'd'));
        pk.pack_uint32(1);
        pk.pack_array(0);
    });
    EXPECT_EQ(decode_error<negotiate>(long_name), errc::limit_exceeded);

    negotiate big;
    for (std::size_t i = 0; i <= max_schedule_flows; ++i)
        big.schedule.push_back(flow_spec{static_cast<std::uint16_t>(i), direction::upload,
                                         test_port::bt, flow_kind::bt,
                                         static_cast<std::uint16_t>(i), 1000});
    EXPECT_EQ(decode_error<negotiate>(wire::encode_message(big)), errc::limit_exceeded);
    big.schedule.pop_back();
    EXPECT_TRUE(wire::decode_message<negotiate>(wire::encode_message(big)).ok());
}

TEST(NegotiationMessages, QueueStatusAndGrantBounds) {
    EXPECT_EQ(decode_error<queue_status>(wire::encode_message(queue_status{0, 3})),
              errc::protocol_error);
    EXPECT_EQ(decode_error<queue_status>(wire::encode_message(queue_status{4, 3})),
              errc::protocol_error);
    EXPECT_EQ(
        decode_error<queue_status>(wire::encode_message(queue_status{1, max_queue_report + 1})),
        errc::protocol_error);

    grant g;
    g.valid_for_ms = static_cast<std::uint64_t>(max_grant_validity.count()) + 1;
    EXPECT_EQ(decode_error<grant>(wire::encode_message(g)), errc::protocol_error);
    const auto short_token = raw_message(grant::type_id, [](wire::packer& pk) {
        pk.pack_array(2);
        pk.pack_bin(15);
        const char zeros[15] = {};
        pk.pack_bin_body(zeros, 15);
        pk.pack_uint64(1000);
    });
    EXPECT_EQ(decode_error<grant>(short_token), errc::protocol_error);
    const auto str_token = raw_message(grant::type_id, [](wire::packer& pk) {
        pk.pack_array(2);
        pack_str(pk, std::string(16, 't'));
        pk.pack_uint64(1000);
    });
    EXPECT_EQ(decode_error<grant>(str_token), errc::protocol_error);
}

TEST(NegotiationMessages, CancelHasAnEmptyBody) {
    const auto with_field = raw_message(cancel::type_id, [](wire::packer& pk) {
        pk.pack_array(1);
        pk.pack_uint8(1);
    });
    EXPECT_EQ(decode_error<cancel>(with_field), errc::protocol_error);
}

TEST(NegotiationMessages, MeasurementFieldsAreBounded) {
    EXPECT_TRUE(wire::decode_message<collect>(collect_of({raw_measurement{}})).ok());

    raw_measurement bad_role;
    bad_role.role = 2;
    EXPECT_EQ(decode_error<collect>(collect_of({bad_role})), errc::protocol_error);

    raw_measurement bad_end;
    bad_end.end = max_flow_end + 1;
    EXPECT_EQ(decode_error<collect>(collect_of({bad_end})), errc::protocol_error);

    raw_measurement slow_connect;
    slow_connect.connect_us = static_cast<std::uint64_t>(max_measured_time.count()) + 1;
    EXPECT_EQ(decode_error<collect>(collect_of({slow_connect})), errc::protocol_error);

    raw_measurement many_samples;
    many_samples.samples = max_samples_per_flow + 1;
    EXPECT_EQ(decode_error<collect>(collect_of({many_samples})), errc::limit_exceeded);

    raw_measurement str_sample;
    str_sample.samples = 2;
    str_sample.sample_as_str = true;
    EXPECT_EQ(decode_error<collect>(collect_of({str_sample})), errc::protocol_error);

    raw_measurement long_cc;
    long_cc.congestion = std::string(max_congestion_name + 1, 'c');
    EXPECT_EQ(decode_error<collect>(collect_of({long_cc})), errc::limit_exceeded);

    raw_measurement binary_cc;
    binary_cc.congestion = std::string("cu\x01ic");
    EXPECT_EQ(decode_error<collect>(collect_of({binary_cc})), errc::protocol_error);
}

TEST(NegotiationMessages, MeasurementListsAreBounded) {
    // Every measurement within its own bound, but more samples in all than one message allows.
    raw_measurement full;
    full.samples = max_samples_per_flow;
    const std::size_t over = max_samples_per_message / max_samples_per_flow + 1;
    EXPECT_EQ(decode_error<collect_reply>(
                  collect_of(std::vector<raw_measurement>(over, full), collect_reply::type_id)),
              errc::limit_exceeded);
    EXPECT_EQ(decode_error<collect>(collect_of(std::vector<raw_measurement>(over, full))),
              errc::limit_exceeded);
    EXPECT_TRUE(
        wire::decode_message<collect>(collect_of(std::vector<raw_measurement>(over - 1, full)))
            .ok());

    EXPECT_EQ(
        decode_error<collect>(collect_of(std::vector<raw_measurement>(max_schedule_flows + 1))),
        errc::limit_exceeded);
}

TEST(NegotiationMessages, LargestCollectFitsAControlFrame) {
    // The secure channel's default frame bound.
    constexpr std::size_t frame_limit = 256 * 1024;
    for (std::size_t flows :
         {std::size_t{1}, std::size_t{16}, std::size_t{17}, std::size_t{64}, max_schedule_flows}) {
        collect c;
        for (std::size_t i = 0; i < flows; ++i) {
            flow_measurement m = full_measurement(static_cast<std::uint16_t>(i), 0);
            m.bytes_sent = m.payload_bytes = m.retransmits =
                std::numeric_limits<std::uint64_t>::max();
            m.samples.assign(sample_budget(flows), std::numeric_limits<std::uint64_t>::max());
            m.congestion_control.assign(max_congestion_name, 'c');
            c.measurements.push_back(std::move(m));
        }
        const bytes encoded = wire::encode_message(c);
        EXPECT_LE(encoded.size(), frame_limit) << flows << " flows";
        auto back = wire::decode_message<collect>(encoded);
        ASSERT_TRUE(back.ok()) << flows << " flows: " << back.err().describe();
        EXPECT_EQ(back->measurements.size(), flows);
    }
}

TEST(NegotiationMessages, DecodingAnotherTypeFails) {
    const bytes g = wire::encode_message(grant{});
    EXPECT_EQ(decode_error<negotiate>(g), errc::protocol_error);
    EXPECT_EQ(decode_error<collect>(wire::encode_message(collect_reply{})), errc::protocol_error);
}

TEST(NegotiationMessages, CollectReplyUnidentifiedCountsAreOptionalAndChecked) {
    auto reply_of = [](std::uint32_t fields, auto&& counts) {
        return raw_message(collect_reply::type_id, [&](wire::packer& pk) {
            pk.pack_array(fields);
            pk.pack_array(0);
            counts(pk);
        });
    };
    // A reply without the fields (an older provider): decoded, no counts.
    auto old_reply = wire::decode_message<collect_reply>(collect_of({}, collect_reply::type_id));
    ASSERT_TRUE(old_reply.ok());
    EXPECT_FALSE(old_reply->unidentified.has_value());
    // Two counts instead of three, a negative count, one above 32 bits, a string.
    EXPECT_EQ(decode_error<collect_reply>(reply_of(3,
                                                   [](wire::packer& pk) {
                                                       pk.pack(1u);
                                                       pk.pack(1u);
                                                   })),
              errc::protocol_error);
    EXPECT_EQ(decode_error<collect_reply>(reply_of(4,
                                                   [](wire::packer& pk) {
                                                       pk.pack(1u);
                                                       pk.pack(-1);
                                                       pk.pack(1u);
                                                   })),
              errc::protocol_error);
    EXPECT_EQ(decode_error<collect_reply>(reply_of(4,
                                                   [](wire::packer& pk) {
                                                       pk.pack(1u);
                                                       pk.pack(std::uint64_t{1} << 32);
                                                       pk.pack(1u);
                                                   })),
              errc::protocol_error);
    EXPECT_NE(decode_error<collect_reply>(reply_of(2, [](wire::packer& pk) { pk.pack("x"); })),
              errc::invalid_argument);
    // More than three counts: refused before they are read.
    EXPECT_NE(decode_error<collect_reply>(reply_of(6,
                                                   [](wire::packer& pk) {
                                                       for (int i = 0; i < 5; ++i)
                                                           pk.pack(1u);
                                                   })),
              errc::invalid_argument);
}

} // namespace
} // namespace glasnode::proto::negotiation

namespace glasnode::proto::negotiation {
namespace {

TEST(NegotiationMessages, NegotiateMaxRateIsOptional) {
    negotiate m;
    m.schedule.push_back(flow_spec{0, direction::download, test_port::bt, flow_kind::bt, 0, 1000});
    // No cap: the three fields of before, so an older provider reads it.
    const bytes plain = wire::encode_message(m);
    auto back = wire::decode_message<negotiate>(plain);
    ASSERT_TRUE(back.ok()) << back.err().describe();
    EXPECT_EQ(back->max_rate_bps, 0u);
    m.max_rate_bps = 40'000'000;
    const bytes capped = wire::encode_message(m);
    EXPECT_GT(capped.size(), plain.size());
    back = wire::decode_message<negotiate>(capped);
    ASSERT_TRUE(back.ok()) << back.err().describe();
    EXPECT_EQ(*back, m);
    // A rate that is not a count, and a fifth field, are refused.
    const auto with = [](auto&& last, std::uint32_t fields) {
        return raw_message(negotiate::type_id, [&](wire::packer& pk) {
            pk.pack_array(fields);
            pack_str(pk, "diff");
            pk.pack_uint32(1);
            pk.pack_array(0);
            last(pk);
        });
    };
    EXPECT_FALSE(
        wire::decode_message<negotiate>(with([](wire::packer& pk) { pk.pack(-5); }, 4)).ok());
    EXPECT_FALSE(
        wire::decode_message<negotiate>(with([](wire::packer& pk) { pk.pack("fast"); }, 4)).ok());
    EXPECT_FALSE(wire::decode_message<negotiate>(with(
                                                     [](wire::packer& pk) {
                                                         pk.pack(1u);
                                                         pk.pack(1u);
                                                     },
                                                     5))
                     .ok());
}

} // namespace
} // namespace glasnode::proto::negotiation
