#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sodium.h>

#include "overlay/wire/bytes.hpp"
#include "support.hpp"
#include "tests_proto/diff/measurement.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::proto::negotiation {
namespace {

using namespace std::chrono_literals;
using testing::small_schedule;
using testing::small_schedule_wall;
using testing::spec;

std::string validate_reason(const std::vector<flow_spec>& s, const schedule_bounds& b = {}) {
    auto r = validate_schedule(s, b);
    EXPECT_FALSE(r.ok());
    if (r.ok())
        return {};
    EXPECT_EQ(r.err().code, errc::invalid_argument);
    return r.err().reason;
}

TEST(Schedule, WallTimeSumsTheLongestFlowOfEachGroupPlusMargin) {
    EXPECT_EQ(schedule_wall_time(small_schedule(), 2000ms), small_schedule_wall);
    EXPECT_EQ(schedule_wall_time(small_schedule(), 0ms), 3000ms + 1000ms + 1500ms);
    EXPECT_EQ(schedule_wall_time({}, 2000ms), 0ms);
    auto ok = validate_schedule(small_schedule(), {});
    ASSERT_TRUE(ok.ok()) << ok.err().describe();
    EXPECT_EQ(*ok, small_schedule_wall);
}

TEST(Schedule, BoundsAreEnforced) {
    EXPECT_NE(validate_reason({}).find("no flows"), std::string::npos);

    std::vector<flow_spec> many;
    for (std::uint16_t i = 0; i < 65; ++i)
        many.push_back(spec(i, direction::upload, test_port::bt, flow_kind::bt, i / 4, 500));
    EXPECT_NE(validate_reason(many).find("65 flows"), std::string::npos);
    many.pop_back();
    schedule_bounds roomy;
    roomy.max_test_wall = 3600s;
    EXPECT_TRUE(validate_schedule(many, roomy).ok());

    auto dup = small_schedule();
    dup[3].index = 1;
    EXPECT_NE(validate_reason(dup).find("index 1 appears twice"), std::string::npos);

    auto short_flow = small_schedule();
    short_flow[2].duration_ms = 499;
    EXPECT_NE(validate_reason(short_flow).find("flow 2 lasts 499 ms"), std::string::npos);
    short_flow[2].duration_ms = 500;
    EXPECT_TRUE(validate_schedule(short_flow, {}).ok());

    auto long_flow = small_schedule();
    long_flow[0].duration_ms = 30'001;
    EXPECT_NE(validate_reason(long_flow).find("30001 ms"), std::string::npos);
    long_flow[0].duration_ms = 30'000;
    EXPECT_TRUE(validate_schedule(long_flow, {}).ok());

    std::vector<flow_spec> crowded;
    for (std::uint16_t i = 0; i < 5; ++i)
        crowded.push_back(spec(i, direction::download, test_port::bt, flow_kind::bt, 7, 1000));
    EXPECT_NE(validate_reason(crowded).find("group 7"), std::string::npos);
    crowded.pop_back();
    EXPECT_TRUE(validate_schedule(crowded, {}).ok());
}

TEST(Schedule, WallTimeLimitIsInclusive) {
    // Five groups of (30 s + 2 s) and one of (18 s + 2 s): exactly 180 s.
    std::vector<flow_spec> s;
    for (std::uint16_t g = 0; g < 5; ++g)
        s.push_back(spec(g, direction::download, test_port::bt, flow_kind::bt, g, 30'000));
    s.push_back(spec(5, direction::upload, test_port::neutral, flow_kind::control, 5, 18'000));
    auto ok = validate_schedule(s, {});
    ASSERT_TRUE(ok.ok()) << ok.err().describe();
    EXPECT_EQ(*ok, 180s);
    s.back().duration_ms += 1;
    EXPECT_NE(validate_reason(s).find("180001 ms"), std::string::npos);
}

TEST(Schedule, RolesFollowTheAgentsDirection) {
    EXPECT_EQ(provider_role(direction::download), flow_role::seed);
    EXPECT_EQ(provider_role(direction::upload), flow_role::leech);
    EXPECT_EQ(agent_role(direction::download), flow_role::leech);
    EXPECT_EQ(agent_role(direction::upload), flow_role::seed);
    EXPECT_EQ(to_string(flow_role::seed), "seed");
    EXPECT_EQ(to_string(direction::upload), "upload");
    EXPECT_EQ(to_string(test_port::neutral), "neutral");
}

TEST(FlowToken, IsKeyedBlake2bOverTheDomainAndIndex) {
    token_t test_token{};
    for (std::size_t i = 0; i < test_token.size(); ++i)
        test_token[i] = static_cast<std::uint8_t>(i * 17 + 3);
    const std::string input = std::string("glasnode/diff/flow") + '\x01' + '\x02'; // index 0x0102
    token_t expected{};
    ASSERT_EQ(crypto_generichash(expected.data(), expected.size(),
                                 reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                                 test_token.data(), test_token.size()),
              0);
    EXPECT_EQ(flow_token(test_token, 0x0102), expected);
    EXPECT_EQ(flow_info_hash(test_token, 0x0102), diff::info_hash_of_token(expected));
}

// Keyed BLAKE2b computed here with libsodium's own call, independently of flow_token().
token_t expected_flow_token(const token_t& test_token, std::uint16_t index) {
    std::string input = "glasnode/diff/flow";
    input += static_cast<char>(index >> 8);
    input += static_cast<char>(index & 0xff);
    token_t out{};
    EXPECT_EQ(crypto_generichash(out.data(), out.size(),
                                 reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                                 test_token.data(), test_token.size()),
              0);
    return out;
}

TEST(FlowToken, MatchesValuesComputedElsewhere) {
    // Python: k = bytes((i * 17 + 3) & 0xff for i in range(16));
    // t = hashlib.blake2b(b"glasnode/diff/flow" + bytes([1, 2]), digest_size=16, key=k)
    // hashlib.sha1(t.digest()). Pins the wire value an independent implementation must send.
    token_t test_token{};
    for (std::size_t i = 0; i < test_token.size(); ++i)
        test_token[i] = static_cast<std::uint8_t>(i * 17 + 3);
    EXPECT_EQ(to_hex(flow_token(test_token, 0x0102)), "f63e3c740d1469511e4e671f7af838a2");
    EXPECT_EQ(to_hex(flow_info_hash(test_token, 0x0102)),
              "be4f3f5d6fded3b48854802595299cf699a6bf6d");
    token_t zero{};
    EXPECT_EQ(to_hex(flow_info_hash(zero, 0)), "f2b3b66c1b2655252c122f53fdd1baa353f3a064");
    token_t one{};
    one[15] = 1;
    EXPECT_EQ(to_hex(flow_info_hash(one, 63)), "41cebb71472a45150b34dd9f442d129c1de0d9cb");
}

TEST(FlowToken, DiffersPerFlowAndPerTest) {
    token_t a{};
    token_t b{};
    b[15] = 1;
    std::set<info_hash_t> seen;
    for (std::uint16_t i = 0; i < 64; ++i) {
        for (const token_t& t : {a, b}) {
            const token_t expected = expected_flow_token(t, i);
            EXPECT_EQ(flow_token(t, i), expected) << i;
            EXPECT_EQ(flow_info_hash(t, i), diff::info_hash_of_token(expected)) << i;
            seen.insert(flow_info_hash(t, i));
        }
    }
    EXPECT_EQ(seen.size(), 128u);
    // The token itself is never what the handshake carries.
    EXPECT_NE(flow_info_hash(a, 0), diff::info_hash_of_token(a));
}

TEST(Samples, BudgetKeepsAMessageWithinItsSampleBound) {
    EXPECT_EQ(sample_budget(0), max_samples_per_flow);
    EXPECT_EQ(sample_budget(1), max_samples_per_flow);
    EXPECT_EQ(sample_budget(16), max_samples_per_flow);
    EXPECT_EQ(sample_budget(64), max_samples_per_message / 64);
    for (std::size_t flows = 1; flows <= max_schedule_flows; ++flows)
        EXPECT_LE(flows * sample_budget(flows), max_samples_per_message) << flows;
}

TEST(Samples, FittingMergesAdjacentIntervalsAndKeepsTheTotal) {
    flow_measurement m;
    m.sample_interval_us = 10'000;
    for (std::uint64_t i = 1; i <= 1001; ++i)
        m.samples.push_back(i);
    const std::uint64_t total = std::accumulate(m.samples.begin(), m.samples.end(), 0ull);
    fit_samples(m, 300);
    // 1001 -> 501 -> 251 samples, interval x4.
    EXPECT_EQ(m.samples.size(), 251u);
    EXPECT_EQ(m.sample_interval_us, 40'000u);
    EXPECT_EQ(std::accumulate(m.samples.begin(), m.samples.end(), 0ull), total);
    EXPECT_EQ(m.samples.front(), 1u + 2u + 3u + 4u);
    EXPECT_EQ(m.samples.back(), 1001u); // the odd trailing sample stays alone

    flow_measurement small;
    small.samples = {5, 6};
    small.sample_interval_us = 7;
    fit_samples(small, 2);
    EXPECT_EQ(small.samples, (std::vector<std::uint64_t>{5, 6}));
    EXPECT_EQ(small.sample_interval_us, 7u);
    fit_samples(small, 0);
    EXPECT_TRUE(small.samples.empty());
}

TEST(Samples, CheckAppliesTheDecodeBounds) {
    flow_measurement m;
    EXPECT_TRUE(check_measurement(m).ok());
    m.samples.assign(max_samples_per_flow + 1, 1);
    EXPECT_FALSE(check_measurement(m).ok());
    m.samples.clear();
    m.congestion_control = "bbr\n";
    EXPECT_FALSE(check_measurement(m).ok());
    m.congestion_control = "bbr";
    m.duration_us = static_cast<std::uint64_t>(max_measured_time.count()) + 1;
    EXPECT_FALSE(check_measurement(m).ok());
}

} // namespace
} // namespace glasnode::proto::negotiation
