// Child process of the crash tests. Usage: storage_crash_writer DIR txn|group
//
// Commits one record per id, forever, and writes each id (8 bytes, host order) to stdout only
// once it is committed: after commit() returned ("txn") or from the group commit completion
// ("group"). The parent ends it at some point -- with SIGKILL (process crash), or by having
// the power-loss shim cut the power mid-commit (power loss) -- and checks that every reported
// id survived. It resumes after the highest id already stored.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unistd.h>

#include "storage/env.hpp"
#include "storage/group_commit.hpp"
#include "storage/table.hpp"
#include "tests/storage/crash_record.hpp"

namespace {

using namespace glasnode;
using namespace glasnode::storage;
using record_table = table<std::uint64_t, testing::crash_record>;

void report(std::uint64_t id) {
    // 8 bytes is below PIPE_BUF: the write is atomic, so the parent never reads half an id.
    ssize_t n;
    do {
        n = ::write(STDOUT_FILENO, &id, sizeof id);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof id)) {
        std::_Exit(0); // the parent went away
    }
}

int fail(const char* what, const error& e) {
    std::fprintf(stderr, "storage_crash_writer: %s: %s\n", what, e.describe().c_str());
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: storage_crash_writer DIR txn|group\n");
        return 2;
    }
    const bool group = std::string_view(argv[2]) == "group";
    env_options o;
    o.map_size = 256 * kib; // small, so that the map grows while the parent kills us
    o.max_map_size = 1 * gib;
    o.sync_on_commit = true;
    auto env = environment::open(argv[1], o);
    if (!env) {
        return fail("open", env.err());
    }
    auto records = record_table::open(**env, testing::crash_table_name);
    if (!records) {
        return fail("open table", records.err());
    }
    std::uint64_t next = 0;
    {
        auto tx = (*env)->begin_read();
        if (!tx) {
            return fail("begin_read", tx.err());
        }
        if (auto last = records->last(*tx)) {
            next = last->first + 1;
        } else if (last.err().code != errc::not_found) {
            return fail("last", last.err());
        }
    }
    auto op = [&](std::uint64_t id) {
        return [&records, id](write_txn& tx) {
            return records->put(tx, id, testing::crash_record{id, testing::crash_payload(id)});
        };
    };

    if (!group) {
        for (std::uint64_t id = next;; ++id) {
            if (status s = (*env)->write(op(id)); !s) {
                return fail("write", s.err());
            }
            report(id);
        }
    }

    group_commit gc(**env, {.max_queued = 64, .max_batch = 16});
    for (std::uint64_t id = next;;) {
        status s = gc.submit(op(id), [id](const status& r) {
            if (!r) {
                std::fprintf(stderr, "storage_crash_writer: commit of %llu: %s\n",
                             static_cast<unsigned long long>(id), r.err().describe().c_str());
                std::_Exit(1);
            }
            report(id);
        });
        if (s) {
            ++id;
        } else if (s.err().code == errc::busy) {
            (void)gc.flush();
        } else {
            return fail("submit", s.err());
        }
    }
}
