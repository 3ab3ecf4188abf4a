#include "node/results_store.hpp"

#include <tuple>

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
        if (!t) return t.err();
        return {};
    });
    return s;
}

} // namespace

results_store::results_store(std::unique_ptr<storage::environment> env) : m_env(std::move(env)) {}
results_store::~results_store() = default;

result<std::unique_ptr<results_store>> results_store::open(const std::filesystem::path& data_dir,
                                                           std::uint64_t map_size) {
    storage::env_options o;
    o.map_size = map_size;
    auto env = storage::open_with_schema(data_dir / "db", o, node_schema());
    if (!env) return env.err();
    return std::unique_ptr<results_store>(new results_store(std::move(*env)));
}

status results_store::put(const test_record& r) {
    auto t = results_table_t::open(*m_env, results_table);
    if (!t) return t.err();
    return m_env->write([&](storage::write_txn& tx) -> status {
        return t->put(tx, results_key{r.started_unix_ms, r.test_id}, r);
    });
}

result<std::vector<test_record>> results_store::list(std::size_t limit) const {
    auto t = results_table_t::open(*m_env, results_table);
    if (!t) return t.err();
    auto tx = m_env->begin_read();
    if (!tx) return tx.err();
    std::vector<test_record> out;
    auto st = t->scan(*tx, storage::key_range::all().reversed(),
                      [&](const results_key&, test_record&& r) {
                          out.push_back(std::move(r));
                          return limit == 0 || out.size() < limit;
                      });
    if (!st) return st.err();
    return out;
}

result<test_record> results_store::find(const std::string& prefix) const {
    auto all = list(0);
    if (!all) return all.err();
    std::optional<test_record> hit;
    for (auto& r : *all) {
        if (r.test_id.rfind(prefix, 0) != 0) continue;
        if (hit)
            return make_error(errc::invalid_argument,
                              "test id prefix \"" + prefix + "\" matches several results");
        hit = std::move(r);
    }
    if (!hit) return make_error(errc::not_found, "no result with test id \"" + prefix + "\"");
    return std::move(*hit);
}

} // namespace glasnode::node
