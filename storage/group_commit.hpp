// Group commit: many producers, one durable write transaction per batch.
//
// Producers submit write operations (a callable taking the write transaction) with a
// completion. A worker thread takes everything queued (up to max_batch), runs the operations
// in submission order inside ONE write transaction, commits it and only then calls each
// completion, in submission order, with the outcome. An ok outcome means the operation's
// writes are committed (durable when the environment syncs on commit): that is the moment to
// acknowledge to a peer, never before.
//
// Failure isolation: each operation runs in its own nested transaction. An operation that
// returns an error (or throws) has its nested transaction aborted and gets that error; the
// other operations of the batch are unaffected. If the commit of the batch fails, every
// operation of the batch that had succeeded gets the commit's error (nothing of the batch was
// written). If the map fills up, the batch is aborted, the map grows and the whole batch runs
// again: an operation may therefore run more than once and must keep its effects inside the
// transaction it is given (no side effects outside it; do those in the completion).
//
// Backpressure: the queue is bounded (max_queued operations not yet taken by the worker).
// submit() never blocks: when the queue is full it returns errc::busy and the operation is
// not taken (no completion will run); the producer sheds load or retries later (flush() waits
// for room). Producers are often event loops, which must not block.
//
// Thread-safety: submit(), flush() and stop() may be called from any thread. Completions run
// on the worker thread: they must be short, must not throw (one that does is counted in
// stats().completions_threw, and the others still run), and must not call flush() (which
// then returns errc::invalid_argument) — submit() from a completion is fine. An operation and
// its completion are destroyed once the completion has run, on the worker thread. The environment
// must outlive this object; while it runs, other threads may still use the environment (write
// transactions simply take turns).
//
// Objects of this type hand `this` to their worker thread: neither copyable nor movable.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/env.hpp"
#include "storage/result.hpp"

namespace glasnode::storage {

struct group_commit_options {
    // Operations waiting for the worker; beyond that submit() returns errc::busy.
    std::size_t max_queued = 4096;
    // Operations per transaction; bounds the transaction's size (LMDB's dirty page limit).
    std::size_t max_batch = 512;
};

struct group_commit_stats {
    std::uint64_t submitted = 0;         // accepted by submit()
    std::uint64_t completed = 0;         // completions called
    std::uint64_t failed = 0;            // completions called with an error
    std::uint64_t commits = 0;           // batches whose commit succeeded
    std::uint64_t batches = 0;           // batches attempted (commits + failed commits)
    std::uint64_t rejected = 0;          // submit() refusals (busy or closed)
    std::uint64_t completions_threw = 0; // completions that broke the no-throw rule
    std::size_t largest_batch = 0;
};

class group_commit {
public:
    using operation = std::function<status(write_txn&)>;
    using completion = std::function<void(const status&)>;

    // Starts the worker thread.
    explicit group_commit(environment& env, group_commit_options options = {});
    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;
    // stop()s. Must not run on the worker thread (from a completion).
    ~group_commit();

    // Queues `op`; `done` (may be empty) is called once with the outcome. Errors (then `done`
    // is never called): errc::busy (queue full), errc::closed (stopping or stopped),
    // errc::invalid_argument (empty op).
    status submit(operation op, completion done = {});

    // Waits until every operation submitted before the call has had its completion called.
    // Returns errc::invalid_argument when called from the worker thread (it would wait for
    // itself). Outcomes are the completions' business; flush() reports none of them.
    status flush();

    // Stops accepting operations, runs and completes everything already queued, and joins
    // the worker. Idempotent. Called from a completion, it only stops accepting (the worker
    // cannot join itself); the destructor joins later.
    void stop();

    group_commit_stats stats() const;

private:
    struct pending {
        operation op;
        completion done;
    };

    void run();
    // Returns whether the batch's transaction committed.
    bool run_batch(std::vector<pending>& batch, std::vector<status>& outcomes);

    environment& m_env;
    group_commit_options m_options;

    mutable std::mutex m_mu;
    std::condition_variable m_work_cv; // worker: queue not empty or stopping
    std::condition_variable m_done_cv; // flush(): progress
    std::deque<pending> m_queue;
    std::uint64_t m_submitted_seq = 0; // operations accepted so far
    std::uint64_t m_done_seq = 0;      // operations whose completion has been called
    bool m_stopping = false;
    group_commit_stats m_stats;

    std::mutex m_join_mu; // stop() may be called by several threads at once
    std::thread::id m_worker_id;
    std::thread m_worker; // last: started once everything above exists
};

} // namespace glasnode::storage
