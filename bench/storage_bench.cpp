// Storage throughput: durable commits one by one versus group commit, and raw table speed.
// Databases live in fresh directories under the system temporary directory (the file system
// there decides what an fsync costs: report it with the figures).
#include <atomic>
#include <benchmark/benchmark.h>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "storage/env.hpp"
#include "storage/group_commit.hpp"
#include "storage/table.hpp"

namespace {

using namespace glasnode;
using namespace glasnode::storage;
using kv_table = table<std::uint64_t, std::string>;

class bench_db {
public:
    explicit bench_db(bool sync) {
        std::string pattern = std::filesystem::temp_directory_path() / "glasnode-bench-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            return;
        }
        m_dir = pattern;
        env_options o;
        o.map_size = 256 * mib;
        o.sync_on_commit = sync;
        auto e = environment::open(m_dir / "db", o);
        if (!e) {
            return;
        }
        env = std::move(*e);
        auto t = kv_table::open(*env, "kv");
        if (t) {
            kv.emplace(*t);
        }
    }
    bench_db(const bench_db&) = delete;
    bench_db& operator=(const bench_db&) = delete;
    ~bench_db() {
        env.reset();
        std::error_code ec;
        if (!m_dir.empty()) {
            std::filesystem::remove_all(m_dir, ec);
        }
    }
    bool ok() const { return env != nullptr && kv.has_value(); }

    std::unique_ptr<environment> env;
    std::optional<kv_table> kv;

private:
    std::filesystem::path m_dir;
};

const std::string value_100(100, 'v');

// One durable transaction per record: the cost of acknowledging each write on its own.
void bm_commit_each(benchmark::State& state) {
    bench_db db(state.range(0) != 0);
    if (!db.ok()) {
        state.SkipWithError("cannot open database");
        return;
    }
    std::uint64_t k = 0;
    for (auto _ : state) {
        status s = db.env->write([&](write_txn& tx) { return db.kv->put(tx, k++, value_100); });
        if (!s) {
            state.SkipWithError(s.err().describe().c_str());
            return;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_commit_each)->Arg(1)->Arg(0)->ArgName("sync")->UseRealTime();

// `threads` producers each submit `per_thread` records, then flush: records per second and
// commits per iteration.
void bm_group_commit(benchmark::State& state) {
    const auto producers = static_cast<int>(state.range(0));
    const int per_thread = 1000;
    bench_db db(true);
    if (!db.ok()) {
        state.SkipWithError("cannot open database");
        return;
    }
    group_commit gc(*db.env, {.max_queued = 1u << 16, .max_batch = 512});
    std::atomic<std::uint64_t> next{0};
    std::atomic<std::uint64_t> failed{0};
    for (auto _ : state) {
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i) {
                    std::uint64_t k = next.fetch_add(1);
                    status s =
                        gc.submit([&db, k](write_txn& tx) { return db.kv->put(tx, k, value_100); },
                                  [&failed](const status& r) {
                                      if (!r) {
                                          failed.fetch_add(1);
                                      }
                                  });
                    if (!s) {
                        failed.fetch_add(1);
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        (void)gc.flush();
    }
    if (failed.load() != 0) {
        state.SkipWithError("operations failed");
    }
    auto st = gc.stats();
    state.SetItemsProcessed(static_cast<std::int64_t>(st.completed));
    state.counters["commits_per_iter"] = benchmark::Counter(
        static_cast<double>(st.commits) / static_cast<double>(state.iterations()));
    state.counters["ops_per_commit"] =
        benchmark::Counter(static_cast<double>(st.completed) / static_cast<double>(st.commits));
}
BENCHMARK(bm_group_commit)->Arg(1)->Arg(4)->ArgName("producers")->UseRealTime();

// Raw put speed inside one large transaction (no commit cost).
void bm_put_in_one_txn(benchmark::State& state) {
    bench_db db(false);
    if (!db.ok()) {
        state.SkipWithError("cannot open database");
        return;
    }
    auto tx = db.env->begin_write();
    if (!tx) {
        state.SkipWithError("begin_write failed");
        return;
    }
    std::uint64_t k = 0;
    for (auto _ : state) {
        // Scatter keys so the B-tree sees inserts everywhere, not only appends.
        std::uint64_t key = (k++ * 0x9e3779b97f4a7c15ull) >> 20;
        if (status s = db.kv->put(*tx, key, value_100); !s) {
            state.SkipWithError(s.err().describe().c_str());
            return;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_put_in_one_txn);

// Point reads of a 100k-record table.
void bm_get(benchmark::State& state) {
    bench_db db(false);
    if (!db.ok()) {
        state.SkipWithError("cannot open database");
        return;
    }
    constexpr std::uint64_t records = 100'000;
    status filled = db.env->write([&](write_txn& tx) -> status {
        for (std::uint64_t k = 0; k < records; ++k) {
            if (auto s = db.kv->put(tx, k, value_100); !s) {
                return s;
            }
        }
        return {};
    });
    if (!filled) {
        state.SkipWithError(filled.err().describe().c_str());
        return;
    }
    auto tx = db.env->begin_read();
    if (!tx) {
        state.SkipWithError("begin_read failed");
        return;
    }
    std::uint64_t k = 0;
    for (auto _ : state) {
        auto v = db.kv->get(*tx, (k++ * 7919) % records);
        benchmark::DoNotOptimize(v);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_get);

} // namespace

BENCHMARK_MAIN();
