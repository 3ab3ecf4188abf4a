// Named tables of an environment: raw byte tables and typed tables on top of them.
//
// table<K, V> maps keys encoded by key_codec<K> (byte order = logical order, see
// key_codec.hpp) to msgpack-encoded values of V (see value_codec.hpp). A table object is a
// small copyable handle (the LMDB table handle and its name); it stays valid as long as its
// environment. Every operation runs inside a transaction supplied by the caller: reads take
// any transaction (`const txn&`), writes a write_txn.
//
// Errors:
// - get/first/last: errc::not_found when there is no such key.
// - a stored value (or key) that does not decode as V (or K): errc::corrupt, naming the table.
// - keys that are empty or longer than environment::max_key_size(): errc::invalid_argument.
// - a write that fills the map: errc::limit_exceeded; the environment also remembers it, so
//   environment::write() grows the map and runs the transaction again.
// - any other LMDB failure: as described in env.hpp.
//
// Views handed to raw scans and returned by raw get point into the memory map: they are valid
// until the transaction ends or (in a write transaction) the next write. Typed operations
// decode into owned values.
//
// Thread-safety: handles are immutable and may be shared; the transaction rules of env.hpp
// apply to the transactions passed in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "storage/env.hpp"
#include "storage/key_codec.hpp"
#include "storage/result.hpp"
#include "storage/value_codec.hpp"

namespace glasnode::storage {

// A half-open range of encoded keys, [lower, upper), visited in ascending order, or in
// descending order when `reverse` is set. A missing bound is unbounded.
struct key_range {
    std::optional<std::string> lower;
    std::optional<std::string> upper;
    bool reverse = false;

    static key_range all() { return {}; }
    // Every key that starts with `prefix` (all keys for an empty prefix).
    static key_range prefix(std::string prefix);
    static key_range between(std::string lower_inclusive, std::string upper_exclusive) {
        return {std::move(lower_inclusive), std::move(upper_exclusive), false};
    }
    static key_range at_least(std::string lower_inclusive) {
        return {std::move(lower_inclusive), std::nullopt, false};
    }
    static key_range below(std::string upper_exclusive) {
        return {std::nullopt, std::move(upper_exclusive), false};
    }
    key_range reversed() const {
        key_range r = *this;
        r.reverse = !r.reverse;
        return r;
    }
    bool contains(std::string_view key) const;
};

// The smallest byte string greater than every string that starts with `prefix`; nullopt when
// there is none (empty prefix or all 0xFF bytes).
std::optional<std::string> prefix_successor(std::string_view prefix);

// A table of raw bytes.
class raw_table {
public:
    // Visitor of a scan: return true to go on, false to stop.
    using visitor = std::function<bool(std::string_view key, std::string_view value)>;

    static result<raw_table> open(environment& env, std::string_view name);
    static result<raw_table> open(write_txn& tx, std::string_view name);

    // Inserts or replaces.
    status put(write_txn& tx, std::string_view key, std::string_view value) const;
    // Inserts unless the key exists; true if it inserted.
    result<bool> insert(write_txn& tx, std::string_view key, std::string_view value) const;
    result<std::string_view> get(const txn& tx, std::string_view key) const;
    // True if the key existed.
    result<bool> erase(write_txn& tx, std::string_view key) const;
    // Visits the records in `range` in order until `fn` returns false.
    status scan(const txn& tx, const key_range& range, const visitor& fn) const;
    // Records in the whole table (O(1)) or in a range (O(records in range)).
    result<std::uint64_t> count(const txn& tx) const;
    result<std::uint64_t> count(const txn& tx, const key_range& range) const;
    // Removes every record; the table itself stays.
    status clear(write_txn& tx) const;

    const std::string& name() const noexcept { return m_name; }
    unsigned handle() const noexcept { return m_dbi; }

private:
    raw_table(unsigned dbi, std::string name) : m_dbi(dbi), m_name(std::move(name)) {}
    status check_key(const txn& tx, std::string_view key) const;
    error failure(const txn& tx, std::string_view op, int rc) const;

    unsigned m_dbi;
    std::string m_name;
};

template <class K, class V>
class table {
public:
    using key_type = K;
    using value_type = V;

    static result<table> open(environment& env, std::string_view name) {
        auto raw = raw_table::open(env, name);
        if (!raw) {
            return raw.err();
        }
        return table(std::move(*raw));
    }
    static result<table> open(write_txn& tx, std::string_view name) {
        auto raw = raw_table::open(tx, name);
        if (!raw) {
            return raw.err();
        }
        return table(std::move(*raw));
    }

    status put(write_txn& tx, const K& key, const V& value) const {
        auto encoded = encode_value(value);
        if (!encoded) {
            return encoded.err();
        }
        return m_raw.put(tx, encode_key(key), *encoded);
    }
    // Inserts unless the key exists; true if it inserted.
    result<bool> insert(write_txn& tx, const K& key, const V& value) const {
        auto encoded = encode_value(value);
        if (!encoded) {
            return encoded.err();
        }
        return m_raw.insert(tx, encode_key(key), *encoded);
    }
    result<V> get(const txn& tx, const K& key) const {
        auto raw = m_raw.get(tx, encode_key(key));
        if (!raw) {
            return raw.err();
        }
        return decode(*raw);
    }
    result<bool> contains(const txn& tx, const K& key) const {
        auto raw = m_raw.get(tx, encode_key(key));
        if (raw) {
            return true;
        }
        if (raw.err().code == errc::not_found) {
            return false;
        }
        return raw.err();
    }
    result<bool> erase(write_txn& tx, const K& key) const {
        return m_raw.erase(tx, encode_key(key));
    }

    // Calls fn(const K&, V&&) for each record in `range`, in key order, until it returns
    // false. A record that does not decode stops the scan with errc::corrupt.
    template <class F>
    requires std::is_invocable_r_v<bool, F&, const K&, V&&>
        status scan(const txn& tx, const key_range& range, F&& fn)
    const {
        std::optional<error> failed;
        status s = m_raw.scan(tx, range, [&](std::string_view k, std::string_view v) {
            auto key = decode_key<K>(k);
            if (!key) {
                failed = make_error(errc::corrupt, "table " + m_raw.name() +
                                                       ": key does not decode as its key type");
                return false;
            }
            auto value = decode(v);
            if (!value) {
                failed = value.err();
                return false;
            }
            return static_cast<bool>(fn(static_cast<const K&>(*key), std::move(*value)));
        });
        if (!s) {
            return s;
        }
        if (failed) {
            return *failed;
        }
        return {};
    }
    template <class F>
    requires std::is_invocable_r_v<bool, F&, const K&, V&&> status scan(const txn& tx, F&& fn)
    const { return scan(tx, key_range::all(), std::forward<F>(fn)); }

    // The first (last) record of `range`; errc::not_found if it is empty.
    result<std::pair<K, V>> first(const txn& tx, const key_range& range = {}) const {
        return edge(tx, range);
    }
    result<std::pair<K, V>> last(const txn& tx, const key_range& range = {}) const {
        return edge(tx, range.reversed());
    }

    result<std::uint64_t> count(const txn& tx) const { return m_raw.count(tx); }
    result<std::uint64_t> count(const txn& tx, const key_range& range) const {
        return m_raw.count(tx, range);
    }
    status clear(write_txn& tx) const { return m_raw.clear(tx); }

    // Ranges in terms of typed keys.
    static key_range between(const K& lower_inclusive, const K& upper_exclusive) {
        return key_range::between(encode_key(lower_inclusive), encode_key(upper_exclusive));
    }
    static key_range at_least(const K& lower_inclusive) {
        return key_range::at_least(encode_key(lower_inclusive));
    }
    static key_range below(const K& upper_exclusive) {
        return key_range::below(encode_key(upper_exclusive));
    }

    const raw_table& raw() const noexcept { return m_raw; }
    const std::string& name() const noexcept { return m_raw.name(); }

private:
    explicit table(raw_table raw) : m_raw(std::move(raw)) {}

    result<V> decode(std::string_view bytes) const {
        auto value = decode_value<V>(bytes);
        if (!value) {
            return make_error(errc::corrupt, "table " + m_raw.name() + ": " + value.err().reason);
        }
        return value;
    }

    result<std::pair<K, V>> edge(const txn& tx, const key_range& range) const {
        std::optional<std::pair<K, V>> found;
        status s = scan(tx, range, [&](const K& k, V&& v) {
            found.emplace(k, std::move(v));
            return false;
        });
        if (!s) {
            return s.err();
        }
        if (!found) {
            return make_error(errc::not_found, "table " + m_raw.name() + ": range is empty");
        }
        return std::move(*found);
    }

    raw_table m_raw;
};

} // namespace glasnode::storage
