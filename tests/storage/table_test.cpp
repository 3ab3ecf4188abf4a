#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "storage/env.hpp"
#include "storage/table.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::storage {
namespace {

struct peer_record {
    std::string address;
    std::uint64_t last_seen = 0;
    std::vector<std::uint8_t> key;
    std::optional<std::uint32_t> asn;
    std::map<std::string, double> scores;
    MSGPACK_DEFINE(address, last_seen, key, asn, scores)

    bool operator==(const peer_record&) const = default;
};

class table_test : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(m_dir.ok());
        env_options o;
        o.map_size = 16 * mib;
        o.sync_on_commit = false; // these tests are about encoding, not durability
        auto e = environment::open(m_dir.db(), o);
        ASSERT_TRUE(e) << e.err().describe();
        m_env = std::move(*e);
    }

    template <class F>
    void write(F&& fn) {
        status s = m_env->write([&](write_txn& tx) -> status { return fn(tx); });
        ASSERT_TRUE(s) << s.err().describe();
    }

    testing::temp_dir m_dir;
    std::unique_ptr<environment> m_env;
};

TEST_F(table_test, round_trips_several_value_types) {
    auto strings = table<std::string, std::string>::open(*m_env, "strings");
    auto peers = table<std::uint64_t, peer_record>::open(*m_env, "peers");
    auto lists = table<std::tuple<std::string, std::uint32_t>, std::vector<std::string>>::open(
        *m_env, "lists");
    ASSERT_TRUE(strings && peers && lists);

    peer_record p{"127.0.0.7:9773", 1700000000, {0, 1, 2, 255}, 64512, {{"rtt", 0.25}}};
    peer_record q{"127.0.0.8:9773", 3, {}, std::nullopt, {}};
    write([&](write_txn& tx) -> status {
        if (auto s = strings->put(tx, "hello", std::string("wor\0ld", 6)); !s) {
            return s;
        }
        if (auto s = peers->put(tx, 7, p); !s) {
            return s;
        }
        if (auto s = peers->put(tx, 8, q); !s) {
            return s;
        }
        return lists->put(tx, {"a", 1}, {"x", "", "zz"});
    });

    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    auto s = strings->get(*tx, "hello");
    ASSERT_TRUE(s);
    EXPECT_EQ(*s, std::string("wor\0ld", 6));
    auto gp = peers->get(*tx, 7);
    ASSERT_TRUE(gp) << gp.err().describe();
    EXPECT_EQ(*gp, p);
    auto gq = peers->get(*tx, 8);
    ASSERT_TRUE(gq);
    EXPECT_EQ(*gq, q);
    auto gl = lists->get(*tx, {"a", 1});
    ASSERT_TRUE(gl);
    EXPECT_EQ(*gl, (std::vector<std::string>{"x", "", "zz"}));

    auto missing = peers->get(*tx, 9);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.err().code, errc::not_found);
    auto has = peers->contains(*tx, 9);
    ASSERT_TRUE(has);
    EXPECT_FALSE(*has);
}

TEST_F(table_test, put_replaces_insert_does_not_erase_reports_presence) {
    auto t = table<std::string, std::uint64_t>::open(*m_env, "counts");
    ASSERT_TRUE(t);
    write([&](write_txn& tx) -> status {
        auto first = t->insert(tx, "k", 1);
        EXPECT_TRUE(first && *first);
        auto second = t->insert(tx, "k", 2);
        EXPECT_TRUE(second && !*second);
        auto v = t->get(tx, "k");
        EXPECT_TRUE(v && *v == 1);
        if (auto s = t->put(tx, "k", 3); !s) {
            return s;
        }
        v = t->get(tx, "k");
        EXPECT_TRUE(v && *v == 3);
        auto gone = t->erase(tx, "k");
        EXPECT_TRUE(gone && *gone);
        auto again = t->erase(tx, "k");
        EXPECT_TRUE(again && !*again);
        return {};
    });
}

TEST_F(table_test, scans_in_key_order_with_bounds_reverse_and_early_stop) {
    auto t = table<std::uint64_t, std::uint64_t>::open(*m_env, "numbers");
    ASSERT_TRUE(t);
    // Insertion order is scrambled; 1 < 255 < 256 < 257 < 65536 differs from little-endian.
    std::vector<std::uint64_t> keys{65536, 256, 1, 257, 255, 0, 1ull << 40, 512, 2};
    write([&](write_txn& tx) -> status {
        for (auto k : keys) {
            if (auto s = t->put(tx, k, k * 10); !s) {
                return s;
            }
        }
        return {};
    });
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);

    std::vector<std::uint64_t> seen;
    ASSERT_TRUE(t->scan(*tx, [&](const std::uint64_t& k, std::uint64_t&& v) {
        EXPECT_EQ(v, k * 10);
        seen.push_back(k);
        return true;
    }));
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{0, 1, 2, 255, 256, 257, 512, 65536, 1ull << 40}));

    seen.clear();
    ASSERT_TRUE(t->scan(*tx, t->between(2, 512), [&](const std::uint64_t& k, std::uint64_t&&) {
        seen.push_back(k);
        return true;
    }));
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{2, 255, 256, 257}));

    seen.clear();
    ASSERT_TRUE(
        t->scan(*tx, t->between(2, 512).reversed(), [&](const std::uint64_t& k, std::uint64_t&&) {
            seen.push_back(k);
            return true;
        }));
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{257, 256, 255, 2}));

    seen.clear();
    ASSERT_TRUE(t->scan(*tx, t->at_least(256), [&](const std::uint64_t& k, std::uint64_t&&) {
        seen.push_back(k);
        return seen.size() < 3;
    }));
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{256, 257, 512}));

    // Reverse from an upper bound beyond every key.
    seen.clear();
    ASSERT_TRUE(
        t->scan(*tx, t->below(1ull << 50).reversed(), [&](const std::uint64_t& k, std::uint64_t&&) {
            seen.push_back(k);
            return seen.size() < 2;
        }));
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{1ull << 40, 65536}));

    auto n = t->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, keys.size());
    auto in_range = t->count(*tx, t->between(1, 257));
    ASSERT_TRUE(in_range);
    EXPECT_EQ(*in_range, 4u);

    auto first = t->first(*tx);
    auto last = t->last(*tx);
    ASSERT_TRUE(first && last);
    EXPECT_EQ(first->first, 0u);
    EXPECT_EQ(last->first, 1ull << 40);
    auto last_below = t->last(*tx, t->below(256));
    ASSERT_TRUE(last_below);
    EXPECT_EQ(last_below->first, 255u);
    auto none = t->first(*tx, t->between(3, 255));
    ASSERT_FALSE(none);
    EXPECT_EQ(none.err().code, errc::not_found);
}

TEST_F(table_test, prefix_scan_over_composite_keys) {
    using key = std::tuple<std::vector<std::uint8_t>, std::uint64_t>;
    auto t = table<key, std::string>::open(*m_env, "feed");
    ASSERT_TRUE(t);
    std::vector<std::uint8_t> alice{0xa1, 0x00};
    std::vector<std::uint8_t> alice_longer{0xa1, 0x00, 0x00};
    std::vector<std::uint8_t> bob{0xb0};
    write([&](write_txn& tx) -> status {
        for (std::uint64_t seq : {300u, 2u, 1u, 256u}) {
            if (auto s = t->put(tx, {alice, seq}, "a" + std::to_string(seq)); !s) {
                return s;
            }
        }
        if (auto s = t->put(tx, {alice_longer, 5}, "x"); !s) {
            return s;
        }
        return t->put(tx, {bob, 1}, "b1");
    });
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    std::vector<std::uint64_t> seqs;
    ASSERT_TRUE(
        t->scan(*tx, key_range::prefix(key_prefix(alice)), [&](const key& k, std::string&& v) {
            EXPECT_EQ(std::get<0>(k), alice);
            EXPECT_EQ(v, "a" + std::to_string(std::get<1>(k)));
            seqs.push_back(std::get<1>(k));
            return true;
        }));
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 256, 300}));
    auto latest = t->last(*tx, key_range::prefix(key_prefix(alice)));
    ASSERT_TRUE(latest);
    EXPECT_EQ(std::get<1>(latest->first), 300u);
    auto bobs = t->count(*tx, key_range::prefix(key_prefix(bob)));
    ASSERT_TRUE(bobs);
    EXPECT_EQ(*bobs, 1u);
}

TEST_F(table_test, undecodable_values_are_corrupt) {
    auto t = table<std::string, peer_record>::open(*m_env, "peers");
    auto as_text = table<std::string, std::string>::open(*m_env, "peers");
    ASSERT_TRUE(t && as_text);
    write([&](write_txn& tx) -> status {
        if (auto s = t->put(tx, "good", peer_record{"a", 1, {}, std::nullopt, {}}); !s) {
            return s;
        }
        // Not msgpack at all (0xc1 is never used).
        if (auto s = t->raw().put(tx, "garbage", std::string("\xc1\x00", 2)); !s) {
            return s;
        }
        // Valid msgpack of the wrong type.
        if (auto s = as_text->put(tx, "text", "just a string"); !s) {
            return s;
        }
        // An array header claiming 2^32-1 elements in a 5-byte value.
        if (auto s = t->raw().put(tx, "huge", std::string("\xdd\xff\xff\xff\xff", 5)); !s) {
            return s;
        }
        // A valid value followed by a stray byte.
        auto good = encode_value(peer_record{"b", 2, {}, std::nullopt, {}});
        if (!good) {
            return good.err();
        }
        return t->raw().put(tx, "trailing", *good + "x");
    });
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    EXPECT_TRUE(t->get(*tx, "good"));
    for (const char* k : {"garbage", "text", "huge", "trailing"}) {
        auto v = t->get(*tx, k);
        ASSERT_FALSE(v) << k;
        EXPECT_EQ(v.err().code, errc::corrupt) << k;
        EXPECT_NE(v.err().reason.find("peers"), std::string::npos) << v.err().reason;
    }
    int visited = 0;
    status s = t->scan(*tx, [&](const std::string&, peer_record&&) {
        ++visited;
        return true;
    });
    ASSERT_FALSE(s);
    EXPECT_EQ(s.err().code, errc::corrupt);
    EXPECT_EQ(visited, 0); // "garbage" sorts first
}

TEST_F(table_test, undecodable_keys_are_corrupt) {
    auto t = table<std::uint64_t, std::string>::open(*m_env, "ids");
    ASSERT_TRUE(t);
    write([&](write_txn& tx) -> status { return t->raw().put(tx, "short", "\xa0"); });
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    status s = t->scan(*tx, [](const std::uint64_t&, std::string&&) { return true; });
    ASSERT_FALSE(s);
    EXPECT_EQ(s.err().code, errc::corrupt);
}

TEST_F(table_test, bad_keys_are_invalid_arguments) {
    auto t = table<std::string, std::string>::open(*m_env, "names");
    ASSERT_TRUE(t);
    auto tx = m_env->begin_write();
    ASSERT_TRUE(tx);
    auto empty = t->put(*tx, "", "v");
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.err().code, errc::invalid_argument);
    auto long_key = t->put(*tx, std::string(m_env->max_key_size() + 1, 'k'), "v");
    ASSERT_FALSE(long_key);
    EXPECT_EQ(long_key.err().code, errc::invalid_argument);
    EXPECT_TRUE(t->put(*tx, std::string(m_env->max_key_size(), 'k'), "v"));
    EXPECT_TRUE(tx->commit());
}

TEST_F(table_test, read_transaction_keeps_its_snapshot) {
    auto t = table<std::string, std::uint64_t>::open(*m_env, "snap");
    ASSERT_TRUE(t);
    write([&](write_txn& tx) { return t->put(tx, "v", 1); });
    auto before = m_env->begin_read();
    ASSERT_TRUE(before);
    write([&](write_txn& tx) { return t->put(tx, "v", 2); });
    auto old_value = t->get(*before, "v");
    ASSERT_TRUE(old_value);
    EXPECT_EQ(*old_value, 1u);
    before->abort();
    auto after = m_env->begin_read();
    ASSERT_TRUE(after);
    auto new_value = t->get(*after, "v");
    ASSERT_TRUE(new_value);
    EXPECT_EQ(*new_value, 2u);
}

} // namespace
} // namespace glasnode::storage
