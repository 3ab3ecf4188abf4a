#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <lmdb.h>

#include "storage/schema.hpp"
#include "storage/table.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::storage {
namespace {

using testing::temp_dir;

env_options options() {
    env_options o;
    o.map_size = 1 * mib;
    o.sync_on_commit = false;
    return o;
}

// Version 1 creates "peers"; version 2 adds "feeds" and copies a marker; version 3 renames a
// field by rewriting values. Each migration counts its runs.
struct counted_schema {
    std::vector<int> runs = std::vector<int>(3, 0);

    schema up_to(std::uint32_t version) {
        schema s;
        s.version = version;
        std::vector<schema::migration> all{
            [this](write_txn& tx) -> status {
                ++runs[0];
                auto peers = table<std::string, std::string>::open(tx, "peers");
                if (!peers) {
                    return peers.err();
                }
                return peers->put(tx, "seed", "v1");
            },
            [this](write_txn& tx) -> status {
                ++runs[1];
                auto feeds = table<std::uint64_t, std::string>::open(tx, "feeds");
                if (!feeds) {
                    return feeds.err();
                }
                return feeds->put(tx, 1, "from v2");
            },
            [this](write_txn& tx) -> status {
                ++runs[2];
                auto peers = table<std::string, std::string>::open(tx, "peers");
                if (!peers) {
                    return peers.err();
                }
                return peers->put(tx, "seed", "v3");
            },
        };
        s.migrations.assign(all.begin(), all.begin() + version);
        return s;
    }
};

TEST(schema, fresh_database_runs_every_migration_once) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    counted_schema c;
    {
        auto env = open_with_schema(dir.db(), options(), c.up_to(2));
        ASSERT_TRUE(env) << env.err().describe();
        auto v = schema_version(**env);
        ASSERT_TRUE(v);
        EXPECT_EQ(*v, 2u);
    }
    EXPECT_EQ(c.runs, (std::vector<int>{1, 1, 0}));
    {
        // Same code again: nothing to do.
        auto env = open_with_schema(dir.db(), options(), c.up_to(2));
        ASSERT_TRUE(env) << env.err().describe();
    }
    EXPECT_EQ(c.runs, (std::vector<int>{1, 1, 0}));
    {
        // Newer code: only the new step runs.
        auto env = environment::open(dir.db(), options());
        ASSERT_TRUE(env);
        auto before = apply_schema(**env, c.up_to(3));
        ASSERT_TRUE(before) << before.err().describe();
        EXPECT_EQ(*before, 2u);
        auto peers = table<std::string, std::string>::open(**env, "peers");
        ASSERT_TRUE(peers);
        auto tx = (*env)->begin_read();
        ASSERT_TRUE(tx);
        auto seed = peers->get(*tx, "seed");
        ASSERT_TRUE(seed);
        EXPECT_EQ(*seed, "v3");
    }
    EXPECT_EQ(c.runs, (std::vector<int>{1, 1, 1}));
}

TEST(schema, newer_database_is_refused_and_left_alone) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    counted_schema c;
    {
        auto env = open_with_schema(dir.db(), options(), c.up_to(3));
        ASSERT_TRUE(env);
    }
    auto old_code = open_with_schema(dir.db(), options(), c.up_to(1));
    ASSERT_FALSE(old_code);
    EXPECT_EQ(old_code.err().code, errc::unsupported_version);
    EXPECT_EQ(c.runs, (std::vector<int>{1, 1, 1}));
    // The refused open closed its environment: the directory can be opened again.
    auto env = environment::open(dir.db(), options());
    ASSERT_TRUE(env) << env.err().describe();
    auto v = schema_version(**env);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 3u);
}

TEST(schema, failing_migration_keeps_the_previous_version_and_its_data) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    counted_schema c;
    schema s = c.up_to(1);
    s.version = 2;
    s.migrations.push_back([](write_txn& tx) -> status {
        auto t = table<std::string, std::string>::open(tx, "half_done");
        if (!t) {
            return t.err();
        }
        if (auto p = t->put(tx, "x", "y"); !p) {
            return p;
        }
        return make_error(errc::io_error, "disk on fire");
    });
    auto env = environment::open(dir.db(), options());
    ASSERT_TRUE(env);
    auto r = apply_schema(**env, s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::io_error);
    EXPECT_NE(r.err().reason.find("1 -> 2"), std::string::npos) << r.err().reason;
    EXPECT_NE(r.err().reason.find("disk on fire"), std::string::npos) << r.err().reason;
    auto v = schema_version(**env);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 1u);
    // The failed step's table creation was rolled back with it.
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    MDB_dbi dbi = 0;
    EXPECT_EQ(mdb_dbi_open(tx->native(), "half_done", 0, &dbi), MDB_NOTFOUND);
}

TEST(schema, migration_count_must_match_version) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    counted_schema c;
    schema s = c.up_to(2);
    s.version = 3;
    auto env = open_with_schema(dir.db(), options(), s);
    ASSERT_FALSE(env);
    EXPECT_EQ(env.err().code, errc::invalid_argument);
}

} // namespace
} // namespace glasnode::storage
