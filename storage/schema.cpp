#include "storage/schema.hpp"

#include <string>

#include "storage/table.hpp"

namespace glasnode::storage {

namespace {

using meta_table = table<std::string, std::uint64_t>;

const std::string version_key = "schema_version";

result<std::uint32_t> read_version(const txn& tx, const meta_table& meta) {
    auto v = meta.get(tx, version_key);
    if (!v) {
        if (v.err().code == errc::not_found) {
            return std::uint32_t{0};
        }
        return v.err();
    }
    if (*v > UINT32_MAX) {
        return make_error(errc::corrupt, "schema version " + std::to_string(*v) + " out of range");
    }
    return static_cast<std::uint32_t>(*v);
}

} // namespace

result<std::uint32_t> schema_version(environment& env) {
    auto meta = meta_table::open(env, meta_table_name);
    if (!meta) {
        return meta.err();
    }
    auto tx = env.begin_read();
    if (!tx) {
        return tx.err();
    }
    return read_version(*tx, *meta);
}

result<std::uint32_t> apply_schema(environment& env, const schema& s) {
    if (s.migrations.size() != s.version) {
        return make_error(errc::invalid_argument,
                          "schema version " + std::to_string(s.version) + " needs exactly " +
                              std::to_string(s.version) + " migrations, got " +
                              std::to_string(s.migrations.size()));
    }
    auto meta = meta_table::open(env, meta_table_name);
    if (!meta) {
        return meta.err();
    }
    auto found = schema_version(env);
    if (!found) {
        return found.err();
    }
    if (*found > s.version) {
        return make_error(errc::unsupported_version,
                          "database schema version " + std::to_string(*found) +
                              " is newer than this program's " + std::to_string(s.version));
    }
    for (std::uint32_t from = *found; from < s.version; ++from) {
        status st = env.write([&](write_txn& tx) -> status {
            // Re-read inside the transaction: the version on disk is the one that counts.
            auto current = read_version(tx, *meta);
            if (!current) {
                return current.err();
            }
            if (*current != from) {
                return make_error(errc::busy, "schema version changed to " +
                                                  std::to_string(*current) +
                                                  " while migrating from " + std::to_string(from));
            }
            if (!s.migrations[from]) {
                return make_error(errc::invalid_argument,
                                  "migration " + std::to_string(from) + " is empty");
            }
            if (status m = s.migrations[from](tx); !m) {
                return make_error(m.err().code, "migration " + std::to_string(from) + " -> " +
                                                    std::to_string(from + 1) + ": " +
                                                    m.err().reason);
            }
            return meta->put(tx, version_key, std::uint64_t{from} + 1);
        });
        if (!st) {
            return st.err();
        }
    }
    return *found;
}

result<std::unique_ptr<environment>> open_with_schema(const std::filesystem::path& dir,
                                                      const env_options& options, const schema& s) {
    auto env = environment::open(dir, options);
    if (!env) {
        return env.err();
    }
    auto applied = apply_schema(**env, s);
    if (!applied) {
        return applied.err();
    }
    return std::move(*env);
}

} // namespace glasnode::storage
