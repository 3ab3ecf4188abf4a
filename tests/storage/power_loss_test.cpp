// Power loss: the writer runs under the power-loss shim (power_loss_shim.cpp), which cuts the
// power at a chosen point of a commit -- the file goes back to what its last fsync/fdatasync
// and O_DSYNC writes made durable, every other write is lost -- and the database must then
// open consistent and hold every record the writer reported as committed. Unlike SIGKILL
// (process_crash_test.cpp), this loses what the page cache held and the disk did not.
// The shim's own model is checked first, on a probe process with known writes.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include <gtest/gtest.h>

#include "tests/storage/crash_child.hpp"
#include "tests/storage/power_loss.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::storage {
namespace {

using testing::check_database;
using testing::child_process;
using testing::power_loss_exit_status;
using testing::temp_dir;

std::vector<std::string> shim_env(const temp_dir& dir, const std::string& db,
                                  const std::string& at) {
    return {"LD_PRELOAD=" GLASNODE_POWER_LOSS_SHIM,
            std::string(testing::power_loss_dir_env) + "=" + db,
            std::string(testing::power_loss_at_env) + "=" + at,
            std::string(testing::power_loss_log_env) + "=" + (dir.path() / "loss.log").string()};
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The shim's line for the last power loss, and one of its counters.
std::string last_loss(const temp_dir& dir) {
    std::istringstream lines(read_file(dir.path() / "loss.log"));
    std::string line, last;
    while (std::getline(lines, line)) {
        last = line;
    }
    return last;
}

std::uint64_t counter(const std::string& line, const std::string& name) {
    const auto at = line.find(" " + name + "=");
    if (at == std::string::npos) {
        ADD_FAILURE() << "no " << name << " in: " << line;
        return 0;
    }
    return std::stoull(line.substr(at + name.size() + 2));
}

// Runs the probe under the shim and returns the data file it leaves.
std::string probe(const temp_dir& dir, const std::string& at, int expected_exit) {
    const auto db =
        dir.path() / ("probe-" + at.substr(0, at.find(':')) + "-" + at.substr(at.find(':') + 1));
    std::filesystem::create_directories(db);
    child_process child({GLASNODE_POWER_LOSS_PROBE, db.string()}, shim_env(dir, db.string(), at));
    EXPECT_TRUE(child.started());
    std::vector<std::uint64_t> nothing;
    const int st = child.wait_for_exit(nothing);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == expected_exit) << at << ": status " << st;
    return read_file(db / "data.mdb");
}

TEST(storage_power_loss, shim_keeps_synced_and_o_dsync_writes_and_loses_the_rest) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    // See power_loss_probe.cpp for the writes and their order.
    std::string all = std::string(5000, 'A') + std::string(5000, 'C') + std::string(20, 'E');
    all.replace(50, 100, std::string(100, 'B'));
    all.replace(4090, 10, std::string(10, 'D'));
    // Never reached: every write passes through unchanged.
    EXPECT_EQ(probe(dir, "sync:3", 0), all);

    std::string synced(6000, 'A');
    std::string with_d = synced;
    with_d.replace(4090, 10, std::string(10, 'D'));

    // Before the second fdatasync: B, C and E are lost, the file is cut back to its synced
    // 6000 bytes; D went through the O_DSYNC descriptor and stays, across a page boundary.
    EXPECT_EQ(probe(dir, "sync:2", power_loss_exit_status), with_d);
    std::string line = last_loss(dir);
    EXPECT_NE(line.find("before fdatasync"), std::string::npos) << line;
    EXPECT_EQ(counter(line, "pages_restored"), 2u) << line; // pages 0 and 1; page 2 is cut
    EXPECT_EQ(counter(line, "bytes_cut"), 4020u) << line;

    EXPECT_EQ(probe(dir, "after-meta:1", power_loss_exit_status), with_d);
    EXPECT_EQ(probe(dir, "meta:1", power_loss_exit_status), synced);
    EXPECT_EQ(probe(dir, "data:3", power_loss_exit_status), synced); // before the writev
    line = last_loss(dir);
    EXPECT_EQ(counter(line, "pages_restored"), 1u) << line;
    EXPECT_EQ(counter(line, "bytes_cut"), 0u) << line;
    // Before the first sync nothing was durable: an empty file (its creation is not undone).
    EXPECT_EQ(probe(dir, "sync:1", power_loss_exit_status), "");
}

struct loss_point {
    const char* at;   // the shim's KIND:N
    const char* mode; // the writer's
};

TEST(storage_power_loss, every_reported_commit_survives_a_power_loss_anywhere_in_a_commit) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    // Each phase of an LMDB commit (with sync_on_commit): page writes ("data"), fdatasync
    // ("sync"), the O_DSYNC meta page write ("meta"), and just after it ("after-meta"), at
    // varied depths, through both write paths. In round 0, sync 1 and meta 1 are the commit
    // that creates the table.
    const loss_point points[] = {
        {"sync:2", "txn"},         {"meta:5", "group"},   {"after-meta:7", "txn"},
        {"data:9", "group"},       {"sync:40", "group"},  {"after-meta:33", "group"},
        {"data:100", "txn"},       {"meta:64", "txn"},    {"sync:150", "txn"},
        {"after-meta:120", "txn"}, {"data:600", "group"}, {"meta:300", "group"},
    };
    // The shim resolves the directory it watches when the writer starts.
    std::filesystem::create_directories(dir.db());
    std::vector<std::uint64_t> all_reported;
    std::uint64_t stored = 0;
    for (std::size_t round = 0; round < std::size(points); ++round) {
        const std::string at = points[round].at;
        const std::string kind = at.substr(0, at.find(':'));
        SCOPED_TRACE("round " + std::to_string(round) + " (" + at + ", " + points[round].mode +
                     ")");
        std::vector<std::uint64_t> reported;
        int st = 0;
        {
            child_process child({GLASNODE_CRASH_WRITER, dir.db().string(), points[round].mode},
                                shim_env(dir, dir.db().string(), at));
            ASSERT_TRUE(child.started());
            st = child.wait_for_exit(reported);
        }
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == power_loss_exit_status)
            << "the writer did not lose power where asked; wait status " << st;
        const std::string line = last_loss(dir);
        if (kind == "sync") {
            // The commit's pages were written and not yet synced: the shim must undo them
            // (restore reused pages, cut new ones off the end), or this round tested nothing.
            EXPECT_GT(counter(line, "pages_restored") + counter(line, "bytes_cut"), 0u) << line;
        }
        // Each writer resumes after what survived, and reports in commit order.
        for (std::size_t i = 0; i < reported.size(); ++i) {
            EXPECT_EQ(reported[i], stored + i);
        }
        all_reported.insert(all_reported.end(), reported.begin(), reported.end());
        const std::uint64_t found = check_database(dir, all_reported);
        ASSERT_FALSE(::testing::Test::HasFailure());
        ASSERT_GE(found, stored + reported.size());
        const std::uint64_t unreported = found - stored - reported.size();
        if (kind == "after-meta") {
            // The meta page of a commit reached the disk: that commit survives although its
            // writer never returned (txn) or never completed its batch (group).
            if (std::string(points[round].mode) == "txn") {
                EXPECT_EQ(unreported, 1u);
            } else {
                EXPECT_GE(unreported, 1u);
            }
        } else {
            // Before the meta page, the commit in flight is lost whole, and every earlier one
            // had been reported.
            EXPECT_EQ(unreported, 0u);
        }
        std::printf("round %zu (%s, %s): %zu reported, %llu committed unreported; %s\n", round,
                    at.c_str(), points[round].mode, reported.size(),
                    static_cast<unsigned long long>(unreported), line.c_str());
        stored = found;
    }
    EXPECT_GE(stored, 200u);
}

} // namespace
} // namespace glasnode::storage
