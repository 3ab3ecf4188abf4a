// The process's LMDB environment and its transactions.
//
// One `environment` per process holds every table of the node (or of the collector). It is
// opened on a directory (created with mode 0700 if missing; files inside are 0600) and owned
// by whoever opened it, usually through the returned unique_ptr; it hands out `this` to its
// transactions and tables, so it is neither copyable nor movable, and every transaction must
// end before it is destroyed.
//
// Thread rules (LMDB's, made explicit):
// - `environment` itself is thread-safe: any thread may open tables, begin transactions and
//   call write().
// - Read transactions are opened with MDB_NOTLS: a thread may hold several, and a read_txn
//   may be handed to another thread as long as only one thread uses it at a time. A read_txn
//   pins the snapshot it started on; keep them short, since pages that a live reader can see
//   are never reused and the file grows meanwhile.
// - There is at most one write transaction in the process (LMDB's writer lock): begin_write()
//   blocks while another thread holds one. A write_txn must be committed or aborted on the
//   thread that began it (the writer lock belongs to that thread). That thread cannot begin a
//   second top-level write transaction meanwhile: LMDB would deadlock, so begin_write(),
//   write() and a first open_table(name) fail with errc::invalid_argument instead. Use
//   write_txn::begin_nested() or open_table(tx, name).
// - Map growth (see write()) waits until no transaction of this process is active, at most
//   `env_options::resize_wait`. A thread that calls write() while it holds a read_txn makes
//   that wait fail, so growth reports errc::busy: end read transactions before writing.
//
// Errors: LMDB return codes become glasnode::error values whose reason names the operation
// and carries mdb_strerror's text ("mdb_put(peers): MDB_MAP_FULL: Environment mapsize limit
// reached"). Codes map as: MDB_NOTFOUND -> not_found; MDB_MAP_FULL, MDB_TXN_FULL,
// MDB_DBS_FULL, MDB_READERS_FULL and friends -> limit_exceeded; MDB_CORRUPTED,
// MDB_PAGE_NOTFOUND, MDB_INVALID -> corrupt; MDB_VERSION_MISMATCH -> unsupported_version;
// bad sizes, bad handles, EINVAL -> invalid_argument; EAGAIN/EBUSY -> busy; any other
// errno -> io_error.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "storage/result.hpp"

struct MDB_env;
struct MDB_txn;

namespace glasnode::storage {

inline constexpr std::size_t kib = 1024;
inline constexpr std::size_t mib = 1024 * kib;
inline constexpr std::size_t gib = 1024 * mib;

// Turns an LMDB (or errno) return code into an error; `operation` names what failed.
error lmdb_error(std::string_view operation, int rc);

struct env_options {
    // Initial size of the memory map (and the most the file may grow to before write()
    // enlarges the map). LMDB rounds it to whole pages.
    std::size_t map_size = 1 * gib;
    // write() doubles the map on MDB_MAP_FULL up to this bound; past it, writes fail with
    // errc::limit_exceeded.
    std::size_t max_map_size = 64 * gib;
    // Named tables the environment can hold (LMDB's maxdbs); the meta table counts.
    unsigned max_tables = 32;
    // Reader slots (concurrent read transactions of all processes).
    unsigned max_readers = 126;
    // true: every commit is on disk when commit() returns (fsync). false (MDB_NOSYNC): a
    // crash of the process loses nothing, a crash of the machine may undo the last commits.
    bool sync_on_commit = true;
    // How long map growth waits for this process's other transactions to end.
    std::chrono::milliseconds resize_wait{10'000};
};

class environment;
class write_txn;

// What read and write transactions share: a live LMDB transaction handle. Tables take
// `const txn&` for reads so that both kinds serve.
class txn {
public:
    txn(const txn&) = delete;
    txn& operator=(const txn&) = delete;

    // False once committed or aborted (or for a moved-from object).
    bool active() const noexcept { return m_txn != nullptr; }
    environment& env() const noexcept { return *m_env; }
    MDB_txn* native() const noexcept { return m_txn; }

protected:
    txn(environment* e, MDB_txn* t) noexcept : m_env(e), m_txn(t) {}
    txn(txn&& other) noexcept;
    txn& operator=(txn&& other) = delete;
    ~txn() = default;

    environment* m_env;
    MDB_txn* m_txn;
};

// A read-only snapshot. Aborted on destruction.
class read_txn : public txn {
public:
    read_txn(read_txn&& other) noexcept = default;
    read_txn& operator=(read_txn&& other) noexcept;
    ~read_txn();

    // Ends the snapshot now; later use of the object is a programming error.
    void abort() noexcept;

private:
    friend class environment;
    read_txn(environment* e, MDB_txn* t) noexcept : txn(e, t) {}
};

// A read-write transaction. Aborted on destruction unless committed. A nested transaction
// (begin_nested) commits into its parent, and the parent must not be used while a nested
// transaction is alive.
class write_txn : public txn {
public:
    write_txn(write_txn&& other) noexcept;
    write_txn& operator=(write_txn&& other) noexcept;
    ~write_txn();

    // Makes the changes visible (and, for a top-level transaction with sync_on_commit,
    // durable). The transaction is over afterwards, whatever the outcome; on failure
    // nothing was committed. errc::limit_exceeded with MDB_MAP_FULL means the map must grow:
    // environment::write() does that by itself.
    status commit();
    void abort() noexcept;

    result<write_txn> begin_nested();

    bool nested() const noexcept { return m_nested; }

private:
    friend class environment;
    write_txn(environment* e, MDB_txn* t, bool nested) noexcept : txn(e, t), m_nested(nested) {}
    void release() noexcept;

    bool m_nested = false;
};

class environment {
public:
    // Opens (creating if missing) the environment in `dir`. Stale reader slots left by dead
    // processes are cleared. A second open of the same directory in one process fails with
    // errc::busy (LMDB forbids it: its locks would break).
    static result<std::unique_ptr<environment>> open(const std::filesystem::path& dir,
                                                     const env_options& options = {});

    environment(const environment&) = delete;
    environment& operator=(const environment&) = delete;
    ~environment();

    result<read_txn> begin_read();
    // Blocks while another thread holds the write transaction.
    result<write_txn> begin_write();

    // Runs `fn` in a fresh write transaction and commits it if `fn` returns success;
    // returns fn's error (after aborting) otherwise. If the map fills up at any point
    // (during fn or the commit), the transaction is aborted, the map is enlarged (doubling,
    // up to max_map_size) and `fn` runs again from scratch: `fn` may therefore run more than
    // once and must keep its effects inside the transaction.
    status write(const std::function<status(write_txn&)>& fn);

    // Opens (creating if needed) the named table and returns its LMDB handle, valid for the
    // life of the environment. Uses its own write transaction the first time a name is seen:
    // call it before starting transactions on this thread, typically at startup.
    result<unsigned> open_table(std::string_view name);
    // The same inside `tx` (e.g. from a migration); the handle becomes valid for other
    // transactions once `tx`'s top-level transaction commits.
    result<unsigned> open_table(write_txn& tx, std::string_view name);

    // Forces buffered commits to disk (useful with sync_on_commit = false).
    status sync();

    std::size_t map_size() const;
    // Times write() enlarged the map since open.
    std::uint64_t map_resizes() const noexcept { return m_resizes.load(); }
    // Largest key in bytes that LMDB accepts (511 with the default build).
    std::size_t max_key_size() const noexcept { return m_max_key_size; }
    const std::filesystem::path& path() const noexcept { return m_path; }
    const env_options& options() const noexcept { return m_options; }
    MDB_env* native() const noexcept { return m_env; }

    // Records that the current write transaction saw MDB_MAP_FULL (there is only one write
    // transaction per process), so that write() grows the map and retries even when the
    // caller swallowed the error. Called by table code; harmless elsewhere.
    void note_map_full() noexcept { m_map_full.store(true); }

private:
    friend class txn;
    friend class read_txn;
    friend class write_txn;

    environment(MDB_env* e, std::filesystem::path path, const env_options& options);

    result<MDB_txn*> begin_native(MDB_txn* parent, unsigned flags);
    void end_native() noexcept;
    status grow_map(std::size_t seen_size);

    MDB_env* m_env;
    std::filesystem::path m_path;
    env_options m_options;
    std::size_t m_max_key_size;

    // Transactions gate: map growth needs every transaction of the process to be over.
    mutable std::mutex m_gate_mu;
    std::condition_variable m_gate_cv;
    unsigned m_active = 0;
    bool m_resizing = false;

    std::mutex m_tables_mu;
    std::map<std::string, unsigned, std::less<>> m_tables;

    std::atomic<bool> m_map_full{false};
    std::atomic<std::uint64_t> m_resizes{0};
};

} // namespace glasnode::storage
