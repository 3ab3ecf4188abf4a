#include <gtest/gtest.h>

#include "overlay/wire/frame.hpp"

namespace glasnode::wire {
namespace {

std::vector<bytes> sample_payloads() {
    std::vector<bytes> p;
    p.push_back(bytes{});
    p.push_back(bytes{0x42});
    bytes big(300);
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<std::uint8_t>(i * 7);
    p.push_back(big);
    p.push_back(bytes{});
    p.push_back(bytes{1, 2, 3, 4, 5});
    return p;
}

bytes stream_of(const std::vector<bytes>& payloads) {
    bytes s;
    for (const bytes& p : payloads)
        append_frame(s, p);
    return s;
}

TEST(frame, header_is_big_endian_length) {
    bytes s;
    append_frame(s, bytes(0x0102, 0xaa));
    ASSERT_EQ(s.size(), 4u + 0x0102);
    EXPECT_EQ(s[0], 0x00);
    EXPECT_EQ(s[1], 0x00);
    EXPECT_EQ(s[2], 0x01);
    EXPECT_EQ(s[3], 0x02);
}

TEST(frame, every_two_way_split_yields_the_same_frames) {
    const auto payloads = sample_payloads();
    const bytes s = stream_of(payloads);
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
        frame_decoder d(1024);
        std::vector<bytes> out;
        ASSERT_TRUE(d.feed(byte_view(s).first(cut), out).ok());
        ASSERT_TRUE(d.feed(byte_view(s).subspan(cut), out).ok());
        ASSERT_EQ(out, payloads) << "cut at " << cut;
        EXPECT_EQ(d.buffered(), 0u);
    }
}

TEST(frame, one_byte_at_a_time) {
    const auto payloads = sample_payloads();
    const bytes s = stream_of(payloads);
    frame_decoder d(1024);
    std::vector<bytes> out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        ASSERT_TRUE(d.feed(byte_view(s).subspan(i, 1), out).ok());
    }
    EXPECT_EQ(out, payloads);
}

TEST(frame, incomplete_input_yields_nothing) {
    bytes s;
    append_frame(s, bytes(50, 0x11));
    for (std::size_t n = 0; n < s.size(); ++n) {
        frame_decoder d(1024);
        std::vector<bytes> out;
        ASSERT_TRUE(d.feed(byte_view(s).first(n), out).ok());
        EXPECT_TRUE(out.empty()) << n;
        EXPECT_EQ(d.buffered(), n);
        EXPECT_FALSE(d.failed());
    }
}

TEST(frame, zero_length_frames) {
    const bytes s{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    frame_decoder d(16);
    std::vector<bytes> out;
    ASSERT_TRUE(d.feed(s, out).ok());
    ASSERT_EQ(out.size(), 3u);
    for (const bytes& f : out)
        EXPECT_TRUE(f.empty());
}

TEST(frame, length_at_limit_is_accepted) {
    bytes s;
    append_frame(s, bytes(64, 0x33));
    frame_decoder d(64);
    std::vector<bytes> out;
    ASSERT_TRUE(d.feed(s, out).ok());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].size(), 64u);
}

TEST(frame, oversized_length_prefix_fails_before_buffering) {
    for (std::uint32_t n : {65u, 0x10000u, 0xffffffffu}) {
        bytes s;
        append_frame(s, bytes{7});
        s.push_back(static_cast<std::uint8_t>(n >> 24));
        s.push_back(static_cast<std::uint8_t>(n >> 16));
        s.push_back(static_cast<std::uint8_t>(n >> 8));
        s.push_back(static_cast<std::uint8_t>(n));
        s.push_back(0xee); // a payload byte that must not be buffered
        frame_decoder d(64);
        std::vector<bytes> out;
        const status st = d.feed(s, out);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.err().code, errc::limit_exceeded);
        EXPECT_NE(st.err().reason.find("exceeds limit 64"), std::string::npos) << st.err().reason;
        ASSERT_EQ(out.size(), 1u) << "frames before the error are still delivered";
        EXPECT_TRUE(d.failed());
        const status again = d.feed(bytes{0, 0, 0, 0}, out);
        ASSERT_FALSE(again.ok());
        EXPECT_EQ(again.err().reason, st.err().reason);
        EXPECT_EQ(out.size(), 1u);
    }
}

TEST(frame, begin_frame_reserves_payload_in_place) {
    bytes s{9};
    const std::size_t at = begin_frame(s, 3);
    EXPECT_EQ(at, 5u);
    ASSERT_EQ(s.size(), 8u);
    s[at] = 1;
    s[at + 1] = 2;
    s[at + 2] = 3;
    frame_decoder d(16);
    std::vector<bytes> out;
    ASSERT_TRUE(d.feed(byte_view(s).subspan(1), out).ok());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], (bytes{1, 2, 3}));
}

} // namespace
} // namespace glasnode::wire
