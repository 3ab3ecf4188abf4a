#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/env.hpp"
#include "storage/table.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::storage {
namespace {

using testing::temp_dir;

env_options small_options() {
    env_options o;
    o.map_size = 256 * kib;
    o.max_map_size = 64 * mib;
    o.sync_on_commit = false;
    return o;
}

TEST(environment, creates_its_directory_private_and_keeps_data_across_reopen) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto path = dir.path() / "nested" / "db";
    {
        auto env = environment::open(path, small_options());
        ASSERT_TRUE(env) << env.err().describe();
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0700u);
        auto t = table<std::string, std::string>::open(**env, "kv");
        ASSERT_TRUE(t);
        ASSERT_TRUE((*env)->write([&](write_txn& tx) { return t->put(tx, "k", "v"); }));
    }
    auto env = environment::open(path, small_options());
    ASSERT_TRUE(env) << env.err().describe();
    auto t = table<std::string, std::string>::open(**env, "kv");
    ASSERT_TRUE(t);
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    auto v = t->get(*tx, "k");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, "v");
}

TEST(environment, second_open_of_one_directory_is_refused) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto first = environment::open(dir.db(), small_options());
    ASSERT_TRUE(first);
    auto second = environment::open(dir.path() / "db" / ".." / "db", small_options());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.err().code, errc::busy);
}

TEST(environment, rejects_inconsistent_options) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    env_options o = small_options();
    o.max_map_size = o.map_size - 1;
    auto env = environment::open(dir.db(), o);
    ASSERT_FALSE(env);
    EXPECT_EQ(env.err().code, errc::invalid_argument);
}

TEST(environment, lmdb_errors_name_operation_and_code) {
    error e = lmdb_error("mdb_put(peers)", -30792); // MDB_MAP_FULL
    EXPECT_EQ(e.code, errc::limit_exceeded);
    EXPECT_NE(e.reason.find("mdb_put(peers)"), std::string::npos) << e.reason;
    EXPECT_NE(e.reason.find("MDB_MAP_FULL"), std::string::npos) << e.reason;
    EXPECT_NE(e.reason.find("mapsize"), std::string::npos) << e.reason;
    EXPECT_EQ(lmdb_error("mdb_get", -30798).code, errc::not_found);
    EXPECT_EQ(lmdb_error("open", 28).code, errc::io_error); // ENOSPC
}

TEST(environment, failed_write_function_leaves_nothing_behind) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto env = environment::open(dir.db(), small_options());
    ASSERT_TRUE(env);
    auto t = table<std::string, std::string>::open(**env, "kv");
    ASSERT_TRUE(t);
    status s = (*env)->write([&](write_txn& tx) -> status {
        if (auto p = t->put(tx, "k", "v"); !p) {
            return p;
        }
        return make_error(errc::invalid_argument, "changed my mind");
    });
    ASSERT_FALSE(s);
    EXPECT_EQ(s.err().reason, "changed my mind");
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    EXPECT_FALSE(t->get(*tx, "k"));
}

TEST(environment, map_grows_on_map_full_and_keeps_every_record) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto env = environment::open(dir.db(), small_options());
    ASSERT_TRUE(env);
    const std::size_t initial = (*env)->map_size();
    auto t = table<std::uint64_t, std::string>::open(**env, "blobs");
    ASSERT_TRUE(t);
    // 4 MiB in one transaction, 16x the initial map.
    const std::string blob(4 * kib, 'z');
    int runs = 0;
    status s = (*env)->write([&](write_txn& tx) -> status {
        ++runs;
        for (std::uint64_t i = 0; i < 1024; ++i) {
            if (auto p = t->put(tx, i, blob); !p) {
                return p;
            }
        }
        return {};
    });
    ASSERT_TRUE(s) << s.err().describe();
    EXPECT_GT(runs, 1);
    EXPECT_GE((*env)->map_resizes(), 1u);
    EXPECT_GT((*env)->map_size(), initial);
    EXPECT_LE((*env)->map_size(), 64 * mib);
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    auto n = t->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1024u);
}

TEST(environment, growth_retries_even_if_the_caller_swallows_map_full) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto env = environment::open(dir.db(), small_options());
    ASSERT_TRUE(env);
    auto t = table<std::uint64_t, std::string>::open(**env, "blobs");
    ASSERT_TRUE(t);
    const std::string blob(4 * kib, 'q');
    status s = (*env)->write([&](write_txn& tx) -> status {
        for (std::uint64_t i = 0; i < 256; ++i) {
            (void)t->put(tx, i, blob);
        }
        return {};
    });
    ASSERT_TRUE(s) << s.err().describe();
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    auto n = t->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 256u);
}

TEST(environment, growth_stops_at_max_map_size) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    env_options o = small_options();
    o.max_map_size = 1 * mib;
    auto env = environment::open(dir.db(), o);
    ASSERT_TRUE(env);
    auto t = table<std::uint64_t, std::string>::open(**env, "blobs");
    ASSERT_TRUE(t);
    const std::string blob(4 * kib, 'z');
    status s = (*env)->write([&](write_txn& tx) -> status {
        for (std::uint64_t i = 0; i < 1024; ++i) {
            if (auto p = t->put(tx, i, blob); !p) {
                return p;
            }
        }
        return {};
    });
    ASSERT_FALSE(s);
    EXPECT_EQ(s.err().code, errc::limit_exceeded);
    EXPECT_LE((*env)->map_size(), 1 * mib);
}

TEST(environment, growth_waits_for_readers_and_reports_busy_when_they_stay) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    env_options o = small_options();
    o.resize_wait = std::chrono::milliseconds(50);
    auto env = environment::open(dir.db(), o);
    ASSERT_TRUE(env);
    auto t = table<std::uint64_t, std::string>::open(**env, "blobs");
    ASSERT_TRUE(t);
    const std::string blob(4 * kib, 'z');
    auto fill = [&](write_txn& tx) -> status {
        for (std::uint64_t i = 0; i < 512; ++i) {
            if (auto p = t->put(tx, i, blob); !p) {
                return p;
            }
        }
        return {};
    };
    {
        // This thread's own reader can never end while write() waits: growth gives up.
        auto reader = (*env)->begin_read();
        ASSERT_TRUE(reader);
        status s = (*env)->write(fill);
        ASSERT_FALSE(s);
        EXPECT_EQ(s.err().code, errc::busy);
    }
    EXPECT_TRUE((*env)->write(fill));
}

TEST(environment, nested_transaction_abort_discards_only_the_child) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto env = environment::open(dir.db(), small_options());
    ASSERT_TRUE(env);
    auto t = table<std::string, std::string>::open(**env, "kv");
    ASSERT_TRUE(t);
    ASSERT_TRUE((*env)->write([&](write_txn& tx) -> status {
        if (auto p = t->put(tx, "parent", "1"); !p) {
            return p;
        }
        auto child = tx.begin_nested();
        if (!child) {
            return child.err();
        }
        EXPECT_TRUE(child->nested());
        if (auto p = t->put(*child, "child", "2"); !p) {
            return p;
        }
        child->abort();
        auto kept = tx.begin_nested();
        if (!kept) {
            return kept.err();
        }
        if (auto p = t->put(*kept, "kept", "3"); !p) {
            return p;
        }
        return kept->commit();
    }));
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    EXPECT_TRUE(t->get(*tx, "parent"));
    EXPECT_TRUE(t->get(*tx, "kept"));
    auto child = t->get(*tx, "child");
    ASSERT_FALSE(child);
    EXPECT_EQ(child.err().code, errc::not_found);
}

TEST(environment, second_write_transaction_on_one_thread_is_refused_not_deadlocked) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto env = environment::open(dir.db(), small_options());
    ASSERT_TRUE(env);
    auto outer = (*env)->begin_write();
    ASSERT_TRUE(outer);
    auto inner = (*env)->begin_write();
    ASSERT_FALSE(inner);
    EXPECT_EQ(inner.err().code, errc::invalid_argument);
    auto table_now = (*env)->open_table("late");
    ASSERT_FALSE(table_now);
    EXPECT_EQ(table_now.err().code, errc::invalid_argument);
    auto in_txn = (*env)->open_table(*outer, "late");
    ASSERT_TRUE(in_txn) << in_txn.err().describe();
    ASSERT_TRUE(outer->commit());
    // The thread is free again.
    EXPECT_TRUE((*env)->write([](write_txn&) { return status{}; }));
    auto cached = (*env)->open_table("late");
    ASSERT_TRUE(cached);
    EXPECT_EQ(*cached, *in_txn);
}

TEST(environment, concurrent_readers_and_a_growing_writer) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto env = environment::open(dir.db(), small_options());
    ASSERT_TRUE(env);
    auto t = table<std::uint64_t, std::string>::open(**env, "blobs");
    ASSERT_TRUE(t);
    constexpr std::uint64_t batches = 32;
    constexpr std::uint64_t per_batch = 32;

    // The writer waits after each commit until the reader has seen it, so that reads really
    // interleave with the commits and the map growths (waiting on what the reader saw, not
    // on time). The reader records every count it read.
    std::mutex mu;
    std::condition_variable seen_cv;
    std::uint64_t latest_seen = 0;
    bool reader_stopped = false;
    std::atomic<bool> done{false};
    std::vector<std::uint64_t> counts;
    std::thread reader([&] {
        while (!done.load()) {
            auto tx = (*env)->begin_read();
            if (!tx) {
                ADD_FAILURE() << tx.err().describe();
                break;
            }
            auto n = t->count(*tx);
            if (!n) {
                ADD_FAILURE() << n.err().describe();
                break;
            }
            tx->abort();
            std::lock_guard lk(mu);
            counts.push_back(*n);
            latest_seen = std::max(latest_seen, *n);
            seen_cv.notify_all();
        }
        std::lock_guard lk(mu);
        reader_stopped = true;
        seen_cv.notify_all();
    });
    const std::string blob(2 * kib, 'r');
    for (std::uint64_t batch = 0; batch < batches; ++batch) {
        status s = (*env)->write([&](write_txn& tx) -> status {
            for (std::uint64_t i = 0; i < per_batch; ++i) {
                if (auto p = t->put(tx, batch * per_batch + i, blob); !p) {
                    return p;
                }
            }
            return {};
        });
        if (!s) {
            ADD_FAILURE() << "batch " << batch << ": " << s.err().describe();
            break; // the reader must still be stopped and joined
        }
        std::unique_lock lk(mu);
        seen_cv.wait(lk, [&] { return reader_stopped || latest_seen >= (batch + 1) * per_batch; });
        if (reader_stopped) {
            break;
        }
    }
    done.store(true);
    reader.join();
    EXPECT_GE((*env)->map_resizes(), 1u);

    // Every snapshot holds whole batches and no snapshot goes back in time; the reader saw
    // each of the 32 commits (the writer waited for it).
    std::set<std::uint64_t> distinct;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        EXPECT_EQ(counts[i] % per_batch, 0u) << "read " << i << " saw half a commit";
        if (i > 0) {
            EXPECT_GE(counts[i], counts[i - 1]) << "read " << i;
        }
        distinct.insert(counts[i]);
    }
    EXPECT_GE(counts.size(), batches);
    for (std::uint64_t batch = 1; batch <= batches; ++batch) {
        EXPECT_EQ(distinct.count(batch * per_batch), 1u) << "commit " << batch << " never read";
    }
    auto tx = (*env)->begin_read();
    ASSERT_TRUE(tx);
    auto n = t->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, batches * per_batch);
}

} // namespace
} // namespace glasnode::storage
