#include "storage/group_commit.hpp"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

namespace glasnode::storage {

group_commit::group_commit(environment& env, group_commit_options options)
    : m_env(env), m_options(options) {
    if (m_options.max_batch == 0) {
        m_options.max_batch = 1;
    }
    m_worker = std::thread([this] { run(); });
    m_worker_id = m_worker.get_id();
}

group_commit::~group_commit() {
    stop();
    std::lock_guard lk(m_join_mu);
    if (m_worker.joinable()) {
        m_worker.join(); // only left when stop() was called from the worker itself
    }
}

status group_commit::submit(operation op, completion done) {
    if (!op) {
        return make_error(errc::invalid_argument, "group_commit: empty operation");
    }
    {
        std::lock_guard lk(m_mu);
        if (m_stopping) {
            ++m_stats.rejected;
            return make_error(errc::closed, "group_commit: stopped");
        }
        if (m_queue.size() >= m_options.max_queued) {
            ++m_stats.rejected;
            return make_error(errc::busy, "group_commit: " + std::to_string(m_queue.size()) +
                                              " operations queued (max_queued)");
        }
        m_queue.push_back(pending{std::move(op), std::move(done)});
        ++m_submitted_seq;
        ++m_stats.submitted;
    }
    m_work_cv.notify_one();
    return {};
}

status group_commit::flush() {
    if (std::this_thread::get_id() == m_worker_id) {
        return make_error(errc::invalid_argument,
                          "group_commit: flush() from a completion would wait for itself");
    }
    std::unique_lock lk(m_mu);
    const std::uint64_t target = m_submitted_seq;
    m_done_cv.wait(lk, [&] { return m_done_seq >= target; });
    return {};
}

void group_commit::stop() {
    {
        std::lock_guard lk(m_mu);
        m_stopping = true;
    }
    m_work_cv.notify_all();
    if (std::this_thread::get_id() == m_worker_id) {
        return;
    }
    std::lock_guard lk(m_join_mu);
    if (m_worker.joinable()) {
        m_worker.join();
    }
}

group_commit_stats group_commit::stats() const {
    std::lock_guard lk(m_mu);
    return m_stats;
}

void group_commit::run() {
    std::vector<pending> batch;
    std::vector<status> outcomes;
    for (;;) {
        batch.clear();
        {
            std::unique_lock lk(m_mu);
            m_work_cv.wait(lk, [&] { return !m_queue.empty() || m_stopping; });
            if (m_queue.empty()) {
                return; // stopping and drained
            }
            const std::size_t n = std::min(m_queue.size(), m_options.max_batch);
            for (std::size_t i = 0; i < n; ++i) {
                batch.push_back(std::move(m_queue.front()));
                m_queue.pop_front();
            }
        }

        const bool committed = run_batch(batch, outcomes);

        std::uint64_t failed = 0;
        std::uint64_t threw = 0;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!outcomes[i]) {
                ++failed;
            }
            if (batch[i].done) {
                try {
                    batch[i].done(outcomes[i]);
                } catch (...) {
                    // A throwing completion is a bug of its owner; the others must still run
                    // and the worker must survive. Counted so that the owner can find out.
                    ++threw;
                }
            }
        }
        const std::size_t size = batch.size();
        // What the operations and completions captured goes now, not when the next batch
        // comes, which may be never.
        batch.clear();

        std::lock_guard lk(m_mu);
        m_done_seq += size;
        m_stats.completed += size;
        m_stats.failed += failed;
        m_stats.completions_threw += threw;
        ++m_stats.batches;
        if (committed) {
            ++m_stats.commits;
        }
        m_stats.largest_batch = std::max(m_stats.largest_batch, size);
        m_done_cv.notify_all();
    }
}

bool group_commit::run_batch(std::vector<pending>& batch, std::vector<status>& outcomes) {
    outcomes.assign(batch.size(), status{});
    // write() may run this more than once (map growth): every run starts from scratch.
    status committed = m_env.write([&](write_txn& tx) -> status {
        outcomes.assign(batch.size(), status{});
        for (std::size_t i = 0; i < batch.size(); ++i) {
            auto child = tx.begin_nested();
            if (!child) {
                outcomes[i] = child.err();
                continue;
            }
            status s;
            try {
                s = batch[i].op(*child);
            } catch (const std::exception& e) {
                s = make_error(errc::invalid_argument,
                               std::string("group_commit: operation threw: ") + e.what());
            } catch (...) {
                s = make_error(errc::invalid_argument, "group_commit: operation threw");
            }
            if (s && child->active()) {
                s = child->commit();
            }
            if (!s) {
                child->abort();
            }
            outcomes[i] = std::move(s);
        }
        return {};
    });
    if (committed) {
        return true;
    }
    for (auto& o : outcomes) {
        if (o) {
            o = committed;
        }
    }
    return false;
}

} // namespace glasnode::storage
