// What the crash tests share: a writer child process whose reported ids arrive through a pipe,
// and the check of a database reopened after the child died.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "storage/env.hpp"
#include "storage/table.hpp"
#include "tests/storage/crash_record.hpp"
#include "tests/storage/temp_dir.hpp"

extern char** environ;

namespace glasnode::storage::testing {

inline constexpr int crash_read_timeout_ms = 30'000;

// A child process whose stdout is a pipe of 8-byte ids; killed and reaped on destruction.
class child_process {
public:
    // `env` entries ("NAME=value") are added to this process's environment (replacing a
    // variable of the same name).
    child_process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return;
        }
        m_read_fd = fds[0];
        std::vector<std::string> environment;
        for (char** e = environ; *e != nullptr; ++e) {
            const std::string entry = *e;
            const std::string name = entry.substr(0, entry.find('='));
            bool replaced = false;
            for (const std::string& extra : env) {
                replaced |= extra.substr(0, extra.find('=')) == name;
            }
            if (!replaced) {
                environment.push_back(entry);
            }
        }
        environment.insert(environment.end(), env.begin(), env.end());
        std::vector<std::string> args = argv;
        std::vector<char*> argp;
        for (std::string& a : args) {
            argp.push_back(a.data());
        }
        argp.push_back(nullptr);
        std::vector<char*> envp;
        for (std::string& e : environment) {
            envp.push_back(e.data());
        }
        envp.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        if (posix_spawn(&m_pid, argp[0], &actions, nullptr, argp.data(), envp.data()) != 0) {
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
            if (!read_some(ids, crash_read_timeout_ms)) {
                return false;
            }
        }
        return true;
    }

    // Collects whatever the child reported until its end of the pipe closed (true) or nothing
    // came for crash_read_timeout_ms (false).
    bool drain(std::vector<std::uint64_t>& ids) {
        while (read_some(ids, crash_read_timeout_ms)) {
        }
        return m_eof;
    }

    // For a child that ends by itself: everything it reported, then its wait status. A child
    // still running after crash_read_timeout_ms of silence is killed (and its status says so).
    int wait_for_exit(std::vector<std::uint64_t>& ids) {
        if (!drain(ids)) {
            return kill_and_wait();
        }
        while (m_pid > 0 && ::waitpid(m_pid, &m_status, 0) < 0 && errno == EINTR) {
        }
        m_pid = -1;
        return m_status;
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
            return r < 0 && errno == EINTR;
        }
        char buf[4096];
        ssize_t n = ::read(m_read_fd, buf, sizeof buf);
        if (n <= 0) {
            m_eof = n == 0;
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
    bool m_eof = false;
    std::string m_pending;
};

// Opens the database the way a restarting node would and checks it against `reported`: every
// reported record is there and intact, and the records are exactly 0..n-1 (commits are whole
// and ordered). Returns n.
inline std::uint64_t check_database(const temp_dir& dir,
                                    const std::vector<std::uint64_t>& reported) {
    env_options o;
    o.map_size = 256 * kib;
    auto env = environment::open(dir.db(), o);
    EXPECT_TRUE(env) << env.err().describe();
    if (!env) {
        return 0;
    }
    auto records = table<std::uint64_t, crash_record>::open(**env, crash_table_name);
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
            EXPECT_EQ(r->payload, crash_payload(id)) << "id " << id;
        }
    }
    std::uint64_t expected = 0;
    status s = records->scan(*tx, [&](const std::uint64_t& id, crash_record&& r) {
        EXPECT_EQ(id, expected);
        EXPECT_EQ(r.id, id);
        EXPECT_EQ(r.payload, crash_payload(id)) << "id " << id;
        ++expected;
        return true;
    });
    EXPECT_TRUE(s) << s.err().describe();
    auto n = records->count(*tx);
    EXPECT_TRUE(n);
    if (n) {
        EXPECT_EQ(*n, expected) << "the table's count disagrees with its scan";
    }
    return expected;
}

} // namespace glasnode::storage::testing
