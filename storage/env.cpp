#include "storage/env.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <set>
#include <system_error>
#include <utility>

#include <lmdb.h>

namespace glasnode::storage {

namespace {

errc classify(int rc) {
    switch (rc) {
    case MDB_NOTFOUND:
        return errc::not_found;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return errc::limit_exceeded;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return errc::corrupt;
    case MDB_VERSION_MISMATCH:
        return errc::unsupported_version;
    case MDB_MAP_RESIZED:
        return errc::busy;
    case MDB_KEYEXIST:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
    case MDB_BAD_TXN:
    case MDB_BAD_RSLOT:
    case MDB_INCOMPATIBLE:
    case EINVAL:
        return errc::invalid_argument;
    case EAGAIN:
    case EBUSY:
        return errc::busy;
    default:
        return errc::io_error;
    }
}

// The environment whose top-level write transaction this thread holds. LMDB's writer lock is
// not recursive: a second begin on the same thread would deadlock, so it is refused instead.
thread_local const environment* t_writing = nullptr;

void end_writing(const environment* e) noexcept {
    if (t_writing == e) {
        t_writing = nullptr;
    }
}

// LMDB forbids opening one environment twice in a process (closing either copy would drop
// the other's file locks), so open directories are tracked here.
std::mutex registry_mu;
std::set<std::string>& open_paths() {
    static std::set<std::string> paths;
    return paths;
}

} // namespace

error lmdb_error(std::string_view operation, int rc) {
    std::string reason(operation);
    reason += ": ";
    // For LMDB's own codes the text starts with the code's name ("MDB_MAP_FULL: ...").
    reason += mdb_strerror(rc);
    return make_error(classify(rc), std::move(reason));
}

// --- transactions ----------------------------------------------------------------------------

txn::txn(txn&& other) noexcept : m_env(other.m_env), m_txn(std::exchange(other.m_txn, nullptr)) {}

read_txn& read_txn::operator=(read_txn&& other) noexcept {
    if (this != &other) {
        abort();
        m_env = other.m_env;
        m_txn = std::exchange(other.m_txn, nullptr);
    }
    return *this;
}

read_txn::~read_txn() {
    abort();
}

void read_txn::abort() noexcept {
    if (m_txn != nullptr) {
        mdb_txn_abort(std::exchange(m_txn, nullptr));
        m_env->end_native();
    }
}

write_txn::write_txn(write_txn&& other) noexcept
    : txn(std::move(other)), m_nested(other.m_nested) {}

write_txn& write_txn::operator=(write_txn&& other) noexcept {
    if (this != &other) {
        abort();
        m_env = other.m_env;
        m_txn = std::exchange(other.m_txn, nullptr);
        m_nested = other.m_nested;
    }
    return *this;
}

write_txn::~write_txn() {
    abort();
}

void write_txn::abort() noexcept {
    if (m_txn != nullptr) {
        mdb_txn_abort(std::exchange(m_txn, nullptr));
        m_env->end_native();
        if (!m_nested) {
            end_writing(m_env);
        }
    }
}

status write_txn::commit() {
    if (m_txn == nullptr) {
        return make_error(errc::invalid_argument, "commit: transaction already finished");
    }
    // LMDB frees the handle whatever the outcome.
    int rc = mdb_txn_commit(std::exchange(m_txn, nullptr));
    m_env->end_native();
    if (!m_nested) {
        end_writing(m_env);
    }
    if (rc != MDB_SUCCESS) {
        if (rc == MDB_MAP_FULL) {
            m_env->note_map_full();
        }
        return lmdb_error("mdb_txn_commit", rc);
    }
    return {};
}

result<write_txn> write_txn::begin_nested() {
    if (m_txn == nullptr) {
        return make_error(errc::invalid_argument, "begin_nested: parent transaction finished");
    }
    auto t = m_env->begin_native(m_txn, 0);
    if (!t) {
        return t.err();
    }
    return write_txn(m_env, *t, true);
}

// --- environment -----------------------------------------------------------------------------

environment::environment(MDB_env* e, std::filesystem::path path, const env_options& options)
    : m_env(e), m_path(std::move(path)), m_options(options),
      m_max_key_size(static_cast<std::size_t>(mdb_env_get_maxkeysize(e))) {}

environment::~environment() {
    assert(m_active == 0 && "transactions must end before their environment");
    mdb_env_close(m_env);
    std::lock_guard lk(registry_mu);
    open_paths().erase(m_path.string());
}

result<std::unique_ptr<environment>> environment::open(const std::filesystem::path& dir,
                                                       const env_options& options) {
    if (options.map_size == 0 || options.max_map_size < options.map_size) {
        return make_error(errc::invalid_argument, "env_options: need 0 < map_size <= max_map_size");
    }
    if (options.max_tables == 0 || options.max_readers == 0) {
        return make_error(errc::invalid_argument,
                          "env_options: max_tables and max_readers must be positive");
    }

    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) {
            return make_error(errc::io_error,
                              "create directory " + dir.string() + ": " + ec.message());
        }
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::replace, ec);
        if (ec) {
            return make_error(errc::io_error, "chmod 0700 " + dir.string() + ": " + ec.message());
        }
    }
    auto canonical = std::filesystem::canonical(dir, ec);
    if (ec) {
        return make_error(errc::io_error, "resolve " + dir.string() + ": " + ec.message());
    }
    if (!std::filesystem::is_directory(canonical)) {
        return make_error(errc::invalid_argument, canonical.string() + " is not a directory");
    }

    std::unique_lock reg(registry_mu);
    if (open_paths().count(canonical.string()) != 0) {
        return make_error(errc::busy,
                          "environment " + canonical.string() + " is already open in this process");
    }

    MDB_env* e = nullptr;
    int rc = mdb_env_create(&e);
    if (rc != MDB_SUCCESS) {
        return lmdb_error("mdb_env_create", rc);
    }
    auto fail = [&](std::string_view op, int code) {
        mdb_env_close(e);
        return lmdb_error(op, code);
    };
    if ((rc = mdb_env_set_maxdbs(e, options.max_tables)) != MDB_SUCCESS) {
        return fail("mdb_env_set_maxdbs", rc);
    }
    if ((rc = mdb_env_set_maxreaders(e, options.max_readers)) != MDB_SUCCESS) {
        return fail("mdb_env_set_maxreaders", rc);
    }
    if ((rc = mdb_env_set_mapsize(e, options.map_size)) != MDB_SUCCESS) {
        return fail("mdb_env_set_mapsize", rc);
    }
    unsigned flags = MDB_NOTLS;
    if (!options.sync_on_commit) {
        flags |= MDB_NOSYNC;
    }
    if ((rc = mdb_env_open(e, canonical.c_str(), flags, 0600)) != MDB_SUCCESS) {
        return fail("mdb_env_open(" + canonical.string() + ")", rc);
    }
    int dead = 0;
    if ((rc = mdb_reader_check(e, &dead)) != MDB_SUCCESS) {
        return fail("mdb_reader_check", rc);
    }
    open_paths().insert(canonical.string());
    reg.unlock();
    return std::unique_ptr<environment>(new environment(e, canonical, options));
}

result<MDB_txn*> environment::begin_native(MDB_txn* parent, unsigned flags) {
    for (int attempt = 0;; ++attempt) {
        {
            std::unique_lock lk(m_gate_mu);
            // A nested transaction's parent is already counted as active, so waiting for a
            // resize here could only time the resize out.
            if (parent == nullptr) {
                m_gate_cv.wait(lk, [&] { return !m_resizing; });
            }
            ++m_active;
        }
        MDB_txn* t = nullptr;
        int rc = mdb_txn_begin(m_env, parent, flags, &t);
        if (rc == MDB_SUCCESS) {
            if (parent == nullptr && (flags & MDB_RDONLY) == 0) {
                m_map_full.store(false);
            }
            return t;
        }
        end_native();
        if (rc != MDB_MAP_RESIZED || attempt > 0) {
            return lmdb_error(
                (flags & MDB_RDONLY) != 0 ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)", rc);
        }
        // Another process enlarged the map: adopt its size (needs no transaction active).
        std::unique_lock lk(m_gate_mu);
        m_gate_cv.wait(lk, [&] { return !m_resizing; });
        m_resizing = true;
        bool idle = m_gate_cv.wait_for(lk, m_options.resize_wait, [&] { return m_active == 0; });
        int adopt = idle ? mdb_env_set_mapsize(m_env, 0) : EBUSY;
        m_resizing = false;
        m_gate_cv.notify_all();
        if (adopt != MDB_SUCCESS) {
            return lmdb_error("mdb_env_set_mapsize(adopt)", adopt);
        }
    }
}

void environment::end_native() noexcept {
    std::lock_guard lk(m_gate_mu);
    assert(m_active > 0);
    --m_active;
    if (m_active == 0) {
        m_gate_cv.notify_all();
    }
}

result<read_txn> environment::begin_read() {
    auto t = begin_native(nullptr, MDB_RDONLY);
    if (!t) {
        return t.err();
    }
    return read_txn(this, *t);
}

result<write_txn> environment::begin_write() {
    if (t_writing == this) {
        return make_error(errc::invalid_argument,
                          "begin_write: this thread already holds the write transaction of " +
                              m_path.string() + " (use write_txn::begin_nested)");
    }
    auto t = begin_native(nullptr, 0);
    if (!t) {
        return t.err();
    }
    t_writing = this;
    return write_txn(this, *t, false);
}

std::size_t environment::map_size() const {
    std::lock_guard lk(m_gate_mu);
    MDB_envinfo info{};
    mdb_env_info(m_env, &info);
    return info.me_mapsize;
}

status environment::grow_map(std::size_t seen_size) {
    std::unique_lock lk(m_gate_mu);
    m_gate_cv.wait(lk, [&] { return !m_resizing; });
    MDB_envinfo info{};
    mdb_env_info(m_env, &info);
    if (info.me_mapsize > seen_size) {
        return {}; // another thread grew it meanwhile
    }
    if (info.me_mapsize >= m_options.max_map_size) {
        return make_error(errc::limit_exceeded, "map full at its maximum size of " +
                                                    std::to_string(m_options.max_map_size) +
                                                    " bytes");
    }
    m_resizing = true;
    bool idle = m_gate_cv.wait_for(lk, m_options.resize_wait, [&] { return m_active == 0; });
    int rc = EBUSY;
    std::size_t target = std::min(m_options.max_map_size, info.me_mapsize * 2);
    if (idle) {
        rc = mdb_env_set_mapsize(m_env, target);
    }
    m_resizing = false;
    m_gate_cv.notify_all();
    if (!idle) {
        return make_error(errc::busy, "map full and other transactions of this process did not end "
                                      "within resize_wait, so the map could not grow");
    }
    if (rc != MDB_SUCCESS) {
        return lmdb_error("mdb_env_set_mapsize", rc);
    }
    m_resizes.fetch_add(1);
    return {};
}

status environment::write(const std::function<status(write_txn&)>& fn) {
    for (;;) {
        std::size_t seen = map_size();
        auto tx = begin_write();
        if (!tx) {
            return tx.err();
        }
        status s = fn(*tx);
        if (s.ok() && !m_map_full.load()) {
            if (!tx->active()) {
                return {};
            }
            s = tx->commit();
            if (s.ok() || !m_map_full.load()) {
                return s;
            }
        } else if (!m_map_full.load()) {
            return s; // fn's own failure; the destructor aborts
        }
        tx->abort();
        if (status g = grow_map(seen); !g) {
            return g;
        }
    }
}

status environment::sync() {
    int rc = mdb_env_sync(m_env, 1);
    if (rc != MDB_SUCCESS) {
        return lmdb_error("mdb_env_sync", rc);
    }
    return {};
}

result<unsigned> environment::open_table(write_txn& tx, std::string_view name) {
    if (name.empty() || name.size() > 255 || name.find('\0') != std::string_view::npos) {
        return make_error(errc::invalid_argument, "table name must be 1..255 bytes without NUL: '" +
                                                      std::string(name) + "'");
    }
    if (!tx.active()) {
        return make_error(errc::invalid_argument, "open_table: transaction finished");
    }
    std::string n(name);
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(tx.native(), n.c_str(), MDB_CREATE, &dbi);
    if (rc != MDB_SUCCESS) {
        if (rc == MDB_MAP_FULL) {
            note_map_full();
        }
        return lmdb_error("mdb_dbi_open(" + n + ")", rc);
    }
    return static_cast<unsigned>(dbi);
}

result<unsigned> environment::open_table(std::string_view name) {
    {
        std::lock_guard lk(m_tables_mu);
        if (auto it = m_tables.find(name); it != m_tables.end()) {
            return it->second;
        }
    }
    unsigned dbi = 0;
    status s = write([&](write_txn& tx) -> status {
        auto r = open_table(tx, name);
        if (!r) {
            return r.err();
        }
        dbi = *r;
        return {};
    });
    if (!s) {
        return s.err();
    }
    std::lock_guard lk(m_tables_mu);
    m_tables.emplace(std::string(name), dbi);
    return dbi;
}

} // namespace glasnode::storage
