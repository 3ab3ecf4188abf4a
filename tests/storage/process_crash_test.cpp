// Process crash: kills a writer process with SIGKILL while it commits and checks that the
// database opens and holds every record the writer reported as committed. The kernel keeps
// what the process had written (the page cache survives the process), so this covers a crash
// of the process, not of the machine: power_loss_test.cpp covers a power loss.
#include <cstdint>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <vector>

#include <gtest/gtest.h>

#include "tests/storage/crash_child.hpp"
#include "tests/storage/temp_dir.hpp"

namespace glasnode::storage {
namespace {

using testing::check_database;
using testing::child_process;
using testing::temp_dir;

TEST(storage_process_crash, sigkill_of_the_writer_during_commits_loses_nothing_reported) {
    temp_dir dir;
    ASSERT_TRUE(dir.ok());
    // Different kill points; odd rounds go through group commit.
    const std::size_t kill_after[] = {1, 9, 40, 3, 150, 17, 300, 64};
    std::vector<std::uint64_t> all_reported;
    std::uint64_t stored = 0;
    for (std::size_t round = 0; round < std::size(kill_after); ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const std::string mode = round % 2 == 0 ? "txn" : "group";
        std::vector<std::uint64_t> reported;
        {
            child_process child({GLASNODE_CRASH_WRITER, dir.db().string(), mode});
            ASSERT_TRUE(child.started());
            bool got = child.read_ids(reported, kill_after[round]);
            int st = child.kill_and_wait();
            ASSERT_TRUE(got) << "writer stopped early, wait status " << st;
            EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "wait status " << st;
            child.drain(reported);
        }
        ASSERT_GE(reported.size(), kill_after[round]);
        // Each child resumes after what survived, and reports in commit order.
        EXPECT_EQ(reported.front(), stored);
        for (std::size_t i = 1; i < reported.size(); ++i) {
            EXPECT_EQ(reported[i], reported[i - 1] + 1);
        }
        all_reported.insert(all_reported.end(), reported.begin(), reported.end());
        std::uint64_t found = check_database(dir, all_reported);
        ASSERT_FALSE(::testing::Test::HasFailure());
        EXPECT_GT(found, reported.back());
        // Records committed but never reported show where the kill landed.
        std::printf("round %zu (%s): ids %llu..%llu reported, %llu committed unreported\n", round,
                    mode.c_str(), static_cast<unsigned long long>(reported.front()),
                    static_cast<unsigned long long>(reported.back()),
                    static_cast<unsigned long long>(found - reported.back() - 1));
        stored = found;
    }
    EXPECT_GE(stored, 584u);
}

} // namespace
} // namespace glasnode::storage
