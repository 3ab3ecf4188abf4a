// Kills a writer process with SIGKILL while it commits and checks that the database opens and
// holds every record the writer reported as committed.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "storage/env.hpp"
#include "storage/table.hpp"
#include "tests/storage/crash_record.hpp"
#include "tests/storage/temp_dir.hpp"

extern char** environ;

namespace glasnode::storage {
namespace {

using testing::crash_record;
using testing::temp_dir;

constexpr int read_timeout_ms = 30'000;

class child_process {
public:
    child_process(const std::string& dir, const std::string& mode) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return;
        }
        m_read_fd = fds[0];
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        std::string exe = GLASNODE_CRASH_WRITER;
        std::vector<char*> argv{exe.data(), const_cast<char*>(dir.c_str()),
                                const_cast<char*>(mode.c_str()), nullptr};
        if (posix_spawn(&m_pid, exe.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
            m_pid = -1;
        }
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]); // only the child writes; EOF once it is gone
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        kill_and_wait();
        if (m_read_fd >= 0) {
            ::close(m_read_fd);
        }
    }

    bool started() const { return m_pid > 0 && m_read_fd >= 0; }

    // Reads reported ids until `want` are in `ids` or the pipe ends; false on timeout/EOF.
    bool read_ids(std::vector<std::uint64_t>& ids, std::size_t want) {
        while (ids.size() < want) {
            if (!read_some(ids, read_timeout_ms)) {
                return false;
            }
        }
        return true;
    }

    // Collects whatever the child had reported before it died.
    void drain(std::vector<std::uint64_t>& ids) {
        while (read_some(ids, read_timeout_ms)) {
        }
    }

    // SIGKILL, then reap; returns the wait status.
    int kill_and_wait() {
        if (m_pid <= 0) {
            return m_status;
        }
        ::kill(m_pid, SIGKILL);
        while (::waitpid(m_pid, &m_status, 0) < 0 && errno == EINTR) {
        }
        m_pid = -1;
        return m_status;
    }

private:
    bool read_some(std::vector<std::uint64_t>& ids, int timeout_ms) {
        pollfd p{m_read_fd, POLLIN, 0};
        int r = ::poll(&p, 1, timeout_ms);
        if (r <= 0) {
            return false;
        }
        char buf[4096];
        ssize_t n = ::read(m_read_fd, buf, sizeof buf);
        if (n <= 0) {
            return n < 0 && errno == EINTR;
        }
        m_pending.append(buf, static_cast<std::size_t>(n));
        std::size_t whole = m_pending.size() / sizeof(std::uint64_t) * sizeof(std::uint64_t);
        for (std::size_t off = 0; off < whole; off += sizeof(std::uint64_t)) {
            std::uint64_t id = 0;
            std::memcpy(&id, m_pending.data() + off, sizeof id);
            ids.push_back(id);
        }
        m_pending.erase(0, whole);
        return true;
    }

    pid_t m_pid = -1;
    int m_read_fd = -1;
    int m_status = 0;
    std::string m_pending;
};

// Opens the database the way a restarting node would and checks it against `reported`.
// Returns the number of records found.
std::uint64_t check_database(const temp_dir& dir, const std::vector<std::uint64_t>& reported) {
    env_options o;
    o.map_size = 256 * kib;
    auto env = environment::open(dir.db(), o);
    EXPECT_TRUE(env) << env.err().describe();
    if (!env) {
        return 0;
    }
    auto records = table<std::uint64_t, crash_record>::open(**env, testing::crash_table_name);
    EXPECT_TRUE(records) << records.err().describe();
    if (!records) {
        return 0;
    }
    auto tx = (*env)->begin_read();
    EXPECT_TRUE(tx);
    if (!tx) {
        return 0;
    }
    for (std::uint64_t id : reported) {
        auto r = records->get(*tx, id);
        EXPECT_TRUE(r) << "reported id " << id << ": " << r.err().describe();
        if (r) {
            EXPECT_EQ(r->id, id);
            EXPECT_EQ(r->payload, testing::crash_payload(id)) << "id " << id;
        }
    }
    // Commits are whole and ordered: the survivors are exactly 0..n-1, each intact.
    std::uint64_t expected = 0;
    status s = records->scan(*tx, [&](const std::uint64_t& id, crash_record&& r) {
        EXPECT_EQ(id, expected);
        EXPECT_EQ(r.id, id);
        EXPECT_EQ(r.payload, testing::crash_payload(id)) << "id " << id;
        ++expected;
        return true;
    });
    EXPECT_TRUE(s) << s.err().describe();
    return expected;
}

TEST(storage_crash, sigkill_during_commits_loses_nothing_reported) {
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
            child_process child(dir.db().string(), mode);
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
