#include <atomic>
#include <cstdint>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/env.hpp"
#include "storage/group_commit.hpp"
#include "storage/table.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::storage {
namespace {

using testing::temp_dir;
using kv_table = table<std::uint64_t, std::string>;

// An operation that holds the worker inside its transaction until released, so that a test
// controls exactly what is queued behind it.
class gate {
public:
    gate() = default;
    gate(const gate&) = delete;
    gate& operator=(const gate&) = delete;
    // A test that failed before releasing must not leave the worker blocked forever.
    ~gate() {
        if (!m_released) {
            release();
        }
    }

    group_commit::operation op() {
        return [this](write_txn&) -> status {
            std::call_once(m_once, [this] { m_entered.set_value(); });
            m_release_future.wait();
            return {};
        };
    }
    void wait_entered() { m_entered_future.wait(); }
    void release() {
        m_released = true;
        m_release.set_value();
    }

private:
    std::once_flag m_once;
    std::promise<void> m_entered;
    std::future<void> m_entered_future = m_entered.get_future();
    std::promise<void> m_release;
    std::shared_future<void> m_release_future = m_release.get_future().share();
    bool m_released = false;
};

class group_commit_test : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(m_dir.ok());
        reopen();
    }

    void reopen(std::size_t map_size = 16 * mib) {
        m_table.reset();
        m_env.reset();
        env_options o;
        o.map_size = map_size;
        auto e = environment::open(m_dir.db(), o);
        ASSERT_TRUE(e) << e.err().describe();
        m_env = std::move(*e);
        auto t = kv_table::open(*m_env, "kv");
        ASSERT_TRUE(t);
        m_table = *t;
    }

    group_commit::operation put(std::uint64_t k, std::string v) {
        return [this, k, v = std::move(v)](write_txn& tx) {
            return m_table->put(tx, k, v);
        };
    }

    std::optional<std::string> read(std::uint64_t k) {
        auto tx = m_env->begin_read();
        if (!tx) {
            return std::nullopt;
        }
        auto v = m_table->get(*tx, k);
        if (!v) {
            return std::nullopt;
        }
        return *v;
    }

    temp_dir m_dir;
    std::unique_ptr<environment> m_env;
    std::optional<kv_table> m_table;
};

TEST_F(group_commit_test, many_submits_share_few_commits_and_survive_reopen) {
    constexpr int producers = 4;
    constexpr int per_producer = 250;
    std::atomic<int> ok{0};
    std::atomic<int> failed{0};
    {
        group_commit gc(*m_env, {.max_queued = 4096, .max_batch = 512});
        gate g;
        ASSERT_TRUE(gc.submit(g.op()));
        g.wait_entered();
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (int i = 0; i < per_producer; ++i) {
                    auto k = static_cast<std::uint64_t>(p * per_producer + i);
                    status s = gc.submit(put(k, "v" + std::to_string(k)),
                                         [&](const status& r) { (r ? ok : failed).fetch_add(1); });
                    EXPECT_TRUE(s) << s.err().describe();
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        g.release();
        ASSERT_TRUE(gc.flush());
        EXPECT_EQ(ok.load(), producers * per_producer);
        EXPECT_EQ(failed.load(), 0);
        auto st = gc.stats();
        EXPECT_EQ(st.submitted, 1u + producers * per_producer);
        EXPECT_EQ(st.completed, st.submitted);
        // The gate alone, then 1000 queued operations in batches of at most 512.
        EXPECT_EQ(st.commits, 3u);
        EXPECT_EQ(st.largest_batch, 512u);
    }
    reopen();
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    auto n = m_table->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, static_cast<std::uint64_t>(producers * per_producer));
    auto v = m_table->get(*tx, 777);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, "v777");
}

TEST_F(group_commit_test, completion_runs_only_after_commit) {
    group_commit gc(*m_env);
    std::promise<void> inside;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> completed{false};
    std::promise<bool> visible_in_completion;
    std::once_flag once;

    ASSERT_TRUE(gc.submit(
        [&](write_txn& tx) -> status {
            if (auto s = m_table->put(tx, 1, "one"); !s) {
                return s;
            }
            std::call_once(once, [&] { inside.set_value(); });
            released.wait();
            return {};
        },
        [&](const status& r) {
            EXPECT_TRUE(r);
            completed.store(true);
            visible_in_completion.set_value(read(1).has_value());
        }));

    inside.get_future().wait();
    // The operation has written but its transaction is not committed: nobody sees it yet.
    EXPECT_FALSE(read(1).has_value());
    EXPECT_FALSE(completed.load());
    release.set_value();
    EXPECT_TRUE(visible_in_completion.get_future().get());
    ASSERT_TRUE(gc.flush());
    EXPECT_TRUE(completed.load());
}

TEST_F(group_commit_test, failing_operation_fails_alone) {
    group_commit gc(*m_env);
    gate g;
    ASSERT_TRUE(gc.submit(g.op()));
    g.wait_entered();

    std::vector<status> outcomes(4);
    auto record = [&](std::size_t i) {
        return [&, i](const status& r) {
            outcomes[i] = r;
        };
    };
    ASSERT_TRUE(gc.submit(put(1, "one"), record(0)));
    ASSERT_TRUE(gc.submit(
        [this](write_txn& tx) -> status {
            if (auto s = m_table->put(tx, 2, "half written"); !s) {
                return s;
            }
            return make_error(errc::limit_exceeded, "refused by its own rule");
        },
        record(1)));
    ASSERT_TRUE(gc.submit(
        [this](write_txn& tx) -> status {
            (void)m_table->put(tx, 3, "before the throw");
            throw std::runtime_error("boom");
        },
        record(2)));
    ASSERT_TRUE(gc.submit(put(4, "four"), record(3)));
    g.release();
    ASSERT_TRUE(gc.flush());

    EXPECT_TRUE(outcomes[0]);
    ASSERT_FALSE(outcomes[1]);
    EXPECT_EQ(outcomes[1].err().code, errc::limit_exceeded);
    EXPECT_EQ(outcomes[1].err().reason, "refused by its own rule");
    ASSERT_FALSE(outcomes[2]);
    EXPECT_NE(outcomes[2].err().reason.find("boom"), std::string::npos);
    EXPECT_TRUE(outcomes[3]);

    EXPECT_EQ(read(1), std::optional<std::string>("one"));
    EXPECT_FALSE(read(2).has_value());
    EXPECT_FALSE(read(3).has_value());
    EXPECT_EQ(read(4), std::optional<std::string>("four"));
    auto st = gc.stats();
    EXPECT_EQ(st.commits, 2u); // the gate, then the four in one transaction
    EXPECT_EQ(st.failed, 2u);
}

TEST_F(group_commit_test, full_queue_reports_busy_and_later_drains) {
    group_commit gc(*m_env, {.max_queued = 4, .max_batch = 512});
    gate g;
    ASSERT_TRUE(gc.submit(g.op()));
    g.wait_entered(); // the gate left the queue: four free places
    std::atomic<int> done{0};
    for (std::uint64_t k = 0; k < 4; ++k) {
        ASSERT_TRUE(gc.submit(put(k, "x"), [&](const status& r) {
            EXPECT_TRUE(r);
            done.fetch_add(1);
        }));
    }
    status refused = gc.submit(put(99, "x"), [&](const status&) { done.fetch_add(100); });
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.err().code, errc::busy);
    g.release();
    ASSERT_TRUE(gc.flush());
    EXPECT_EQ(done.load(), 4);
    EXPECT_FALSE(read(99).has_value());
    EXPECT_EQ(gc.stats().rejected, 1u);
    EXPECT_TRUE(gc.submit(put(99, "x")));
}

TEST_F(group_commit_test, stop_drains_queued_operations_and_refuses_new_ones) {
    std::atomic<int> done{0};
    std::promise<void> stopped;
    {
        group_commit gc(*m_env);
        gate g;
        ASSERT_TRUE(gc.submit(g.op(), [&](const status&) {
            gc.stop(); // from the worker: stops accepting, the queue still drains
            stopped.set_value();
        }));
        g.wait_entered();
        for (std::uint64_t k = 0; k < 100; ++k) {
            ASSERT_TRUE(gc.submit(put(k, "v"), [&](const status& r) {
                EXPECT_TRUE(r);
                done.fetch_add(1);
            }));
        }
        g.release();
        stopped.get_future().wait();
        status late = gc.submit(put(1000, "late"));
        ASSERT_FALSE(late);
        EXPECT_EQ(late.err().code, errc::closed);
        gc.stop();
        EXPECT_EQ(done.load(), 100);
    }
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    auto n = m_table->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 100u);
}

TEST_F(group_commit_test, flush_from_a_completion_is_refused) {
    group_commit gc(*m_env);
    std::promise<errc> code;
    ASSERT_TRUE(gc.submit(put(1, "x"), [&](const status&) {
        status s = gc.flush();
        code.set_value(s ? errc::busy : s.err().code);
    }));
    EXPECT_EQ(code.get_future().get(), errc::invalid_argument);
    EXPECT_TRUE(gc.flush());
}

TEST_F(group_commit_test, throwing_completion_is_counted_and_the_others_still_run) {
    group_commit gc(*m_env);
    std::atomic<int> later{0};
    gate g;
    ASSERT_TRUE(gc.submit(g.op()));
    g.wait_entered();
    // Both in the batch behind the gate.
    ASSERT_TRUE(gc.submit(put(1, "a"), [](const status&) { throw std::runtime_error("bug"); }));
    ASSERT_TRUE(gc.submit(put(2, "b"), [&](const status& r) {
        EXPECT_TRUE(r);
        later.fetch_add(1);
    }));
    g.release();
    ASSERT_TRUE(gc.flush());
    EXPECT_EQ(later.load(), 1);
    EXPECT_EQ(gc.stats().completions_threw, 1u);
    EXPECT_EQ(read(1), "a"); // the commit stands: only the notification was lost
}

TEST_F(group_commit_test, completion_is_released_once_it_has_run) {
    group_commit gc(*m_env);
    auto token = std::make_shared<int>(0);
    std::weak_ptr<int> watch = token;
    ASSERT_TRUE(gc.submit(put(1, "x"), [token](const status&) {}));
    token.reset();
    ASSERT_TRUE(gc.flush());
    // No further batch: what the completion captured must not linger until one comes.
    EXPECT_TRUE(watch.expired());
}

TEST_F(group_commit_test, batch_runs_again_after_map_growth) {
    reopen(256 * kib);
    group_commit gc(*m_env);
    gate g;
    ASSERT_TRUE(gc.submit(g.op()));
    g.wait_entered();
    std::atomic<int> runs{0};
    std::atomic<int> ok{0};
    const std::string blob(4 * kib, 'b');
    for (std::uint64_t k = 0; k < 200; ++k) {
        ASSERT_TRUE(gc.submit(
            [&, k](write_txn& tx) {
                runs.fetch_add(1);
                return m_table->put(tx, k, blob);
            },
            [&](const status& r) {
                EXPECT_TRUE(r) << r.err().describe();
                ok.fetch_add(r ? 1 : 0);
            }));
    }
    g.release();
    ASSERT_TRUE(gc.flush());
    EXPECT_EQ(ok.load(), 200);
    EXPECT_GT(runs.load(), 200);
    EXPECT_GE(m_env->map_resizes(), 1u);
    auto tx = m_env->begin_read();
    ASSERT_TRUE(tx);
    auto n = m_table->count(*tx);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 200u);
}

} // namespace
} // namespace glasnode::storage
