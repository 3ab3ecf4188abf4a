#include "storage/table.hpp"

#include <cstring>

#include <lmdb.h>

namespace glasnode::storage {

namespace {

MDB_val to_val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view to_view(const MDB_val& v) {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// LMDB's default order: unsigned bytes, then length.
int compare_keys(std::string_view a, std::string_view b) {
    std::size_t n = a.size() < b.size() ? a.size() : b.size();
    int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
    if (c != 0) {
        return c;
    }
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

class cursor {
public:
    cursor() = default;
    cursor(const cursor&) = delete;
    cursor& operator=(const cursor&) = delete;
    ~cursor() {
        if (m_cursor != nullptr) {
            mdb_cursor_close(m_cursor);
        }
    }
    int open(MDB_txn* t, MDB_dbi dbi) { return mdb_cursor_open(t, dbi, &m_cursor); }
    int get(MDB_val& key, MDB_val& value, MDB_cursor_op op) {
        return mdb_cursor_get(m_cursor, &key, &value, op);
    }

private:
    MDB_cursor* m_cursor = nullptr;
};

} // namespace

std::optional<std::string> prefix_successor(std::string_view prefix) {
    std::string s(prefix);
    while (!s.empty()) {
        auto last = static_cast<unsigned char>(s.back());
        if (last != 0xff) {
            s.back() = static_cast<char>(last + 1);
            return s;
        }
        s.pop_back();
    }
    return std::nullopt;
}

key_range key_range::prefix(std::string prefix) {
    key_range r;
    r.upper = prefix_successor(prefix);
    if (!prefix.empty()) {
        r.lower = std::move(prefix);
    }
    return r;
}

bool key_range::contains(std::string_view key) const {
    if (lower && compare_keys(key, *lower) < 0) {
        return false;
    }
    if (upper && compare_keys(key, *upper) >= 0) {
        return false;
    }
    return true;
}

result<raw_table> raw_table::open(environment& env, std::string_view name) {
    auto dbi = env.open_table(name);
    if (!dbi) {
        return dbi.err();
    }
    return raw_table(*dbi, std::string(name));
}

result<raw_table> raw_table::open(write_txn& tx, std::string_view name) {
    auto dbi = tx.env().open_table(tx, name);
    if (!dbi) {
        return dbi.err();
    }
    return raw_table(*dbi, std::string(name));
}

error raw_table::failure(const txn& tx, std::string_view op, int rc) const {
    if (rc == MDB_MAP_FULL) {
        tx.env().note_map_full();
    }
    std::string what(op);
    what += "(";
    what += m_name;
    what += ")";
    return lmdb_error(what, rc);
}

status raw_table::check_key(const txn& tx, std::string_view key) const {
    if (!tx.active()) {
        return make_error(errc::invalid_argument, "table " + m_name + ": transaction finished");
    }
    if (key.empty() || key.size() > tx.env().max_key_size()) {
        return make_error(errc::invalid_argument,
                          "table " + m_name + ": key of " + std::to_string(key.size()) +
                              " bytes (allowed 1.." + std::to_string(tx.env().max_key_size()) +
                              ")");
    }
    return {};
}

status raw_table::put(write_txn& tx, std::string_view key, std::string_view value) const {
    if (status s = check_key(tx, key); !s) {
        return s;
    }
    MDB_val k = to_val(key);
    MDB_val v = to_val(value);
    if (int rc = mdb_put(tx.native(), m_dbi, &k, &v, 0); rc != MDB_SUCCESS) {
        return failure(tx, "mdb_put", rc);
    }
    return {};
}

result<bool> raw_table::insert(write_txn& tx, std::string_view key, std::string_view value) const {
    if (status s = check_key(tx, key); !s) {
        return s.err();
    }
    MDB_val k = to_val(key);
    MDB_val v = to_val(value);
    int rc = mdb_put(tx.native(), m_dbi, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        return false;
    }
    if (rc != MDB_SUCCESS) {
        return failure(tx, "mdb_put", rc);
    }
    return true;
}

result<std::string_view> raw_table::get(const txn& tx, std::string_view key) const {
    if (status s = check_key(tx, key); !s) {
        return s.err();
    }
    MDB_val k = to_val(key);
    MDB_val v{};
    if (int rc = mdb_get(tx.native(), m_dbi, &k, &v); rc != MDB_SUCCESS) {
        return failure(tx, "mdb_get", rc);
    }
    return to_view(v);
}

result<bool> raw_table::erase(write_txn& tx, std::string_view key) const {
    if (status s = check_key(tx, key); !s) {
        return s.err();
    }
    MDB_val k = to_val(key);
    int rc = mdb_del(tx.native(), m_dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) {
        return false;
    }
    if (rc != MDB_SUCCESS) {
        return failure(tx, "mdb_del", rc);
    }
    return true;
}

status raw_table::scan(const txn& tx, const key_range& range, const visitor& fn) const {
    if (!tx.active()) {
        return make_error(errc::invalid_argument, "table " + m_name + ": transaction finished");
    }
    cursor c;
    if (int rc = c.open(tx.native(), m_dbi); rc != MDB_SUCCESS) {
        return failure(tx, "mdb_cursor_open", rc);
    }
    MDB_val k{};
    MDB_val v{};
    int rc = MDB_SUCCESS;
    MDB_cursor_op step = MDB_NEXT;
    if (!range.reverse) {
        if (range.lower) {
            k = to_val(*range.lower);
            rc = c.get(k, v, MDB_SET_RANGE);
        } else {
            rc = c.get(k, v, MDB_FIRST);
        }
    } else {
        step = MDB_PREV;
        if (range.upper) {
            // Position on the first key >= upper, then step back below it.
            k = to_val(*range.upper);
            rc = c.get(k, v, MDB_SET_RANGE);
            if (rc == MDB_SUCCESS) {
                rc = c.get(k, v, MDB_PREV);
            } else if (rc == MDB_NOTFOUND) {
                rc = c.get(k, v, MDB_LAST);
            }
        } else {
            rc = c.get(k, v, MDB_LAST);
        }
    }
    for (; rc == MDB_SUCCESS; rc = c.get(k, v, step)) {
        std::string_view key = to_view(k);
        if (!range.reverse && range.upper && compare_keys(key, *range.upper) >= 0) {
            return {};
        }
        if (range.reverse && range.lower && compare_keys(key, *range.lower) < 0) {
            return {};
        }
        if (!fn(key, to_view(v))) {
            return {};
        }
    }
    if (rc != MDB_NOTFOUND) {
        return failure(tx, "mdb_cursor_get", rc);
    }
    return {};
}

result<std::uint64_t> raw_table::count(const txn& tx) const {
    if (!tx.active()) {
        return make_error(errc::invalid_argument, "table " + m_name + ": transaction finished");
    }
    MDB_stat st{};
    if (int rc = mdb_stat(tx.native(), m_dbi, &st); rc != MDB_SUCCESS) {
        return failure(tx, "mdb_stat", rc);
    }
    return static_cast<std::uint64_t>(st.ms_entries);
}

result<std::uint64_t> raw_table::count(const txn& tx, const key_range& range) const {
    std::uint64_t n = 0;
    status s = scan(tx, range, [&](std::string_view, std::string_view) {
        ++n;
        return true;
    });
    if (!s) {
        return s.err();
    }
    return n;
}

status raw_table::clear(write_txn& tx) const {
    if (!tx.active()) {
        return make_error(errc::invalid_argument, "table " + m_name + ": transaction finished");
    }
    if (int rc = mdb_drop(tx.native(), m_dbi, 0); rc != MDB_SUCCESS) {
        return failure(tx, "mdb_drop", rc);
    }
    return {};
}

} // namespace glasnode::storage
