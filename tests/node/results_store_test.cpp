// The results store commits through its group-commit writer: put() does not wait for the
// disk, a completion reports the commit, async_put() keeps an io_context busy until the record
// is durable, and close() commits whatever is still queued.

#include <future>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "node/results_store.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::node {
namespace {

using storage::testing::temp_dir;

constexpr std::uint64_t map_size = 16 << 20;

test_record record(std::uint64_t started, std::string id) {
    test_record r;
    r.test_id = std::move(id);
    r.started_unix_ms = started;
    r.role = "provider";
    r.report_json = "{}";
    return r;
}

std::unique_ptr<results_store> open_store(const temp_dir& dir) {
    auto s = results_store::open(dir.path(), map_size);
    EXPECT_TRUE(s) << (s ? "" : s.err().describe());
    return s ? std::move(*s) : nullptr;
}

std::vector<std::string> ids(const results_store& store) {
    auto all = store.list(0);
    EXPECT_TRUE(all) << (all ? "" : all.err().describe());
    std::vector<std::string> out;
    if (all)
        for (const auto& r : *all)
            out.push_back(r.test_id);
    return out;
}

TEST(ResultsStore, CompletionComesAfterTheCommitOnTheWriterThread) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto store = open_store(dir);
    ASSERT_TRUE(store);
    std::promise<std::pair<status, std::thread::id>> done;
    auto outcome = done.get_future();
    ASSERT_TRUE(store->put(record(1, "aa"), [&](const status& st) {
        done.set_value({st, std::this_thread::get_id()});
    }));
    ASSERT_EQ(outcome.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    auto [st, thread] = outcome.get();
    EXPECT_TRUE(st) << st.err().describe();
    EXPECT_NE(thread, std::this_thread::get_id());
    EXPECT_EQ(ids(*store), std::vector<std::string>{"aa"});
}

TEST(ResultsStore, PutDurableReturnsOnceListed) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto store = open_store(dir);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put_durable(record(2, "bb")));
    ASSERT_TRUE(store->put_durable(record(3, "cc")));
    EXPECT_EQ(ids(*store), (std::vector<std::string>{"cc", "bb"})); // newest first
}

TEST(ResultsStore, CloseCommitsEverythingQueued) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    constexpr int n = 200;
    {
        auto store = open_store(dir);
        ASSERT_TRUE(store);
        for (int i = 0; i < n; ++i)
            ASSERT_TRUE(store->put(record(100 + i, "id" + std::to_string(i))));
        store->close();
        auto late = store->put(record(1, "late"));
        ASSERT_FALSE(late);
        EXPECT_EQ(late.err().code, errc::closed);
    }
    auto again = open_store(dir);
    ASSERT_TRUE(again);
    EXPECT_EQ(ids(*again).size(), static_cast<std::size_t>(n));
}

TEST(ResultsStore, FailedWriteReachesItsCompletionAndSparesTheOthers) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto store = open_store(dir);
    ASSERT_TRUE(store);
    std::optional<status> bad;
    std::optional<status> good;
    // LMDB refuses keys over 511 bytes: this one cannot be stored.
    ASSERT_TRUE(store->put(record(5, std::string(600, 'x')), [&](const status& st) { bad = st; }));
    ASSERT_TRUE(store->put(record(6, "fine"), [&](const status& st) { good = st; }));
    ASSERT_TRUE(store->flush());
    ASSERT_TRUE(bad.has_value());
    EXPECT_FALSE(*bad);
    ASSERT_TRUE(good.has_value());
    EXPECT_TRUE(*good) << good->err().describe();
    EXPECT_EQ(ids(*store), std::vector<std::string>{"fine"});
}

TEST(ResultsStore, AsyncPutKeepsTheLoopBusyUntilDurable) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto store = open_store(dir);
    ASSERT_TRUE(store);
    asio::io_context io;
    std::optional<status> outcome;
    std::thread::id delivered_on;
    std::vector<std::string> listed_on_delivery;
    // Nothing but the pending write keeps io busy: run() must not return before it is done.
    asio::post(io, [&] {
        store->async_put(io.get_executor(), record(7, "dd"), [&](status st) {
            outcome = std::move(st);
            delivered_on = std::this_thread::get_id();
            listed_on_delivery = ids(*store);
        });
    });
    io.run();
    ASSERT_TRUE(outcome.has_value()) << "run() returned before the write's handler ran";
    EXPECT_TRUE(*outcome) << outcome->err().describe();
    EXPECT_EQ(delivered_on, std::this_thread::get_id());
    EXPECT_EQ(listed_on_delivery, std::vector<std::string>{"dd"});
}

TEST(ResultsStore, AsyncPutAwaitedInACoroutine) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    auto store = open_store(dir);
    ASSERT_TRUE(store);
    asio::io_context io;
    std::optional<status> first;
    std::optional<status> after_close;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            first =
                co_await store->async_put(io.get_executor(), record(8, "ee"), asio::use_awaitable);
            store->close();
            after_close =
                co_await store->async_put(io.get_executor(), record(9, "ff"), asio::use_awaitable);
        },
        [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    io.run();
    ASSERT_TRUE(first.has_value());
    EXPECT_TRUE(*first) << first->err().describe();
    ASSERT_TRUE(after_close.has_value());
    ASSERT_FALSE(*after_close);
    EXPECT_EQ(after_close->err().code, errc::closed);
    EXPECT_EQ(ids(*store), std::vector<std::string>{"ee"});
}

} // namespace
} // namespace glasnode::node
