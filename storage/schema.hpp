// Schema version and migrations of an environment.
//
// The version lives in the meta table ("glasnode.meta", key "schema_version", a msgpack
// unsigned integer). A database that has never been migrated is at version 0. schema{N,
// migrations} says the code speaks version N and that migrations[i] turns a version-i
// database into version i + 1 (migrations.size() must be N); migrations[0] typically creates
// the first tables.
//
// apply_schema() runs every pending migration in order, each one in its own write
// transaction together with the update of the stored version, so a crash leaves the database
// at some exact version and the next open resumes from there. A migration that fails aborts
// its transaction and stops the process of migrating (the database stays at the previous
// version). Because a transaction is retried after map growth, a migration may run more than
// once and must only touch the transaction it is given.
//
// Errors: errc::unsupported_version if the stored version is newer than schema.version (the
// database was written by newer code; it is left untouched), errc::invalid_argument if
// migrations.size() != version, errc::corrupt if the stored version does not decode, and the
// migration's own error (its reason prefixed with the step) if one fails.
//
// Thread-safety: call at startup, before other threads use the environment.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "storage/env.hpp"
#include "storage/result.hpp"

namespace glasnode::storage {

inline constexpr std::string_view meta_table_name = "glasnode.meta";

struct schema {
    using migration = std::function<status(write_txn&)>;

    std::uint32_t version = 0;
    std::vector<migration> migrations;
};

// The stored version (0 for a database never migrated).
result<std::uint32_t> schema_version(environment& env);

// Brings the database to schema.version; returns the version found before migrating.
result<std::uint32_t> apply_schema(environment& env, const schema& s);

// Opens the environment and applies the schema; the environment is closed again on failure.
result<std::unique_ptr<environment>> open_with_schema(const std::filesystem::path& dir,
                                                      const env_options& options, const schema& s);

} // namespace glasnode::storage
