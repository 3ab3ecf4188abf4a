#include "node/results_store.hpp"

#include <future>
#include <optional>
#include <tuple>

#include <spdlog/spdlog.h>

#include "storage/schema.hpp"
#include "storage/table.hpp"

namespace glasnode::node {
namespace {

constexpr std::string_view results_table = "results";
using results_key = std::tuple<std::uint64_t, std::string>;
using results_table_t = storage::table<results_key, test_record>;

storage::schema node_schema() {
    storage::schema s;
    s.version = 1;
    s.migrations.push_back([](storage::write_txn& tx) -> status {
        auto t = results_table_t::open(tx, results_table);
        if (!t)
            return t.err();
        return {};
    });
    return s;
}

} // namespace

// Opened once at open(): the writer thread cannot open a table itself (that takes a write
// transaction of its own while it holds the batch's).
struct results_store::tables {
    results_table_t results;
};

results_store::results_store(std::unique_ptr<storage::environment> env, std::unique_ptr<tables> t)
    : m_env(std::move(env)), m_tables(std::move(t)),
      m_writer(std::make_unique<storage::group_commit>(*m_env)) {}

results_store::~results_store() {
    close();
}

result<std::unique_ptr<results_store>> results_store::open(const std::filesystem::path& data_dir,
                                                           std::uint64_t map_size) {
    storage::env_options o;
    o.map_size = map_size;
    auto env = storage::open_with_schema(data_dir / "db", o, node_schema());
    if (!env)
        return env.err();
    auto t = results_table_t::open(**env, results_table);
    if (!t)
        return t.err();
    return std::unique_ptr<results_store>(
        new results_store(std::move(*env), std::make_unique<tables>(tables{std::move(*t)})));
}

status results_store::put(test_record r, completion done) {
    auto record = std::make_shared<const test_record>(std::move(r));
    const results_table_t& t = m_tables->results;
    // The operation may run more than once (map growth): it only writes into its transaction.
    auto op = [&t, record](storage::write_txn& tx) -> status {
        return t.put(tx, results_key{record->started_unix_ms, record->test_id}, *record);
    };
    auto finished = [record, done = std::move(done)](const status& outcome) {
        if (!done) {
            if (!outcome)
                spdlog::warn("results: test {} not stored: {}", record->test_id,
                             outcome.err().describe());
            return;
        }
        try {
            done(outcome);
        } catch (const std::exception& e) {
            spdlog::error("results: completion for test {} failed: {}", record->test_id, e.what());
        } catch (...) {
            spdlog::error("results: completion for test {} failed", record->test_id);
        }
    };
    return m_writer->submit(std::move(op), std::move(finished));
}

status results_store::put_durable(test_record r) {
    auto outcome = std::make_shared<std::promise<status>>();
    auto committed = outcome->get_future();
    if (auto st = put(std::move(r), [outcome](const status& s) { outcome->set_value(s); }); !st)
        return st;
    return committed.get();
}

status results_store::flush() {
    return m_writer->flush();
}

void results_store::close() {
    m_writer->stop();
}

result<std::vector<test_record>> results_store::list(std::size_t limit) const {
    auto tx = m_env->begin_read();
    if (!tx)
        return tx.err();
    std::vector<test_record> out;
    auto st = m_tables->results.scan(*tx, storage::key_range::all().reversed(),
                                     [&](const results_key&, test_record&& r) {
                                         out.push_back(std::move(r));
                                         return limit == 0 || out.size() < limit;
                                     });
    if (!st)
        return st.err();
    return out;
}

result<test_record> results_store::find(const std::string& prefix) const {
    auto all = list(0);
    if (!all)
        return all.err();
    std::optional<test_record> hit;
    for (auto& r : *all) {
        if (r.test_id.rfind(prefix, 0) != 0)
            continue;
        if (hit)
            return make_error(errc::invalid_argument,
                              "test id prefix \"" + prefix + "\" matches several results");
        hit = std::move(r);
    }
    if (!hit)
        return make_error(errc::not_found, "no result with test id \"" + prefix + "\"");
    return std::move(*hit);
}

} // namespace glasnode::node
