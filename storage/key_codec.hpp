// Order-preserving key encoding: for any two keys a and b of one type, a < b exactly when
// encode_key(a) < encode_key(b) as unsigned bytes, which is the order LMDB sorts by. So a scan
// in byte order is a scan in logical order.
//
// Encodings (per component):
// - unsigned integers: fixed width, big-endian;
// - signed integers: fixed width, big-endian with the sign bit flipped (negatives first);
// - std::array<std::uint8_t, N>: the N bytes (fixed width, e.g. node ids);
// - std::string, std::vector<std::uint8_t>: the raw bytes when the component is the last one
//   of the key; inside a composite key, 0x00 becomes 0x00 0xFF and the component ends with
//   0x00 0x01, which keeps the order ("a" < "a\0" < "ab") and makes the key decodable;
// - std::pair / std::tuple: the components in order (composite keys such as (u64, u64) or
//   (bytes, u64)); only the last component of the outermost key is written raw.
//
// key_prefix(parts...) encodes leading components of a composite key, so that
// key_range::prefix(key_prefix(author)) covers every (author, *) key.
//
// Other key types: specialise key_codec<T> with the same two static functions.
//
// Thread-safety: pure functions. Errors: decode_key returns nullopt for bytes that are not a
// valid encoding of the type (wrong width, bad escape, trailing bytes).
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace glasnode::storage {

// key_codec<T>::encode(value, out, last) appends the encoding of `value` to `out`; `last` says
// whether nothing follows it in the key. key_codec<T>::decode(in, value, last) reads one
// component from the front of `in`, advances `in` past it and returns false if the bytes are
// not a valid encoding.
template <class T>
struct key_codec;

template <std::unsigned_integral T>
requires(!std::same_as<T, bool>) struct key_codec<T> {
    static void encode(T v, std::string& out, bool /*last*/) {
        for (std::size_t i = sizeof(T); i-- > 0;) {
            out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> (8 * i))));
        }
    }
    static bool decode(std::string_view& in, T& v, bool /*last*/) {
        if (in.size() < sizeof(T)) {
            return false;
        }
        T r = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            r = static_cast<T>((r << 8) | static_cast<std::uint8_t>(in[i]));
        }
        in.remove_prefix(sizeof(T));
        v = r;
        return true;
    }
};

template <std::signed_integral T>
struct key_codec<T> {
    using unsigned_type = std::make_unsigned_t<T>;
    static constexpr unsigned_type sign_bit = unsigned_type(1) << (8 * sizeof(T) - 1);

    static void encode(T v, std::string& out, bool last) {
        key_codec<unsigned_type>::encode(static_cast<unsigned_type>(v) ^ sign_bit, out, last);
    }
    static bool decode(std::string_view& in, T& v, bool last) {
        unsigned_type u = 0;
        if (!key_codec<unsigned_type>::decode(in, u, last)) {
            return false;
        }
        v = static_cast<T>(u ^ sign_bit);
        return true;
    }
};

template <std::size_t N>
struct key_codec<std::array<std::uint8_t, N>> {
    static void encode(const std::array<std::uint8_t, N>& v, std::string& out, bool /*last*/) {
        out.append(reinterpret_cast<const char*>(v.data()), N);
    }
    static bool decode(std::string_view& in, std::array<std::uint8_t, N>& v, bool /*last*/) {
        if (in.size() < N) {
            return false;
        }
        for (std::size_t i = 0; i < N; ++i) {
            v[i] = static_cast<std::uint8_t>(in[i]);
        }
        in.remove_prefix(N);
        return true;
    }
};

namespace detail {

inline constexpr char escape_byte = '\x00';
inline constexpr char escaped_zero = '\xff';
inline constexpr char terminator = '\x01';

inline void encode_variable(std::string_view raw, std::string& out, bool last) {
    if (last) {
        out.append(raw);
        return;
    }
    for (char c : raw) {
        out.push_back(c);
        if (c == escape_byte) {
            out.push_back(escaped_zero);
        }
    }
    out.push_back(escape_byte);
    out.push_back(terminator);
}

// Reads one variable-length component into `raw`.
inline bool decode_variable(std::string_view& in, std::string& raw, bool last) {
    raw.clear();
    if (last) {
        raw.assign(in);
        in.remove_prefix(in.size());
        return true;
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != escape_byte) {
            raw.push_back(in[i]);
            continue;
        }
        if (i + 1 >= in.size()) {
            return false;
        }
        if (in[i + 1] == terminator) {
            in.remove_prefix(i + 2);
            return true;
        }
        if (in[i + 1] != escaped_zero) {
            return false;
        }
        raw.push_back(escape_byte);
        ++i;
    }
    return false;
}

} // namespace detail

template <>
struct key_codec<std::string> {
    static void encode(const std::string& v, std::string& out, bool last) {
        detail::encode_variable(v, out, last);
    }
    static bool decode(std::string_view& in, std::string& v, bool last) {
        return detail::decode_variable(in, v, last);
    }
};

template <>
struct key_codec<std::vector<std::uint8_t>> {
    static void encode(const std::vector<std::uint8_t>& v, std::string& out, bool last) {
        detail::encode_variable({reinterpret_cast<const char*>(v.data()), v.size()}, out, last);
    }
    static bool decode(std::string_view& in, std::vector<std::uint8_t>& v, bool last) {
        std::string raw;
        if (!detail::decode_variable(in, raw, last)) {
            return false;
        }
        v.assign(raw.begin(), raw.end());
        return true;
    }
};

template <class... Ts>
struct key_codec<std::tuple<Ts...>> {
    static void encode(const std::tuple<Ts...>& v, std::string& out, bool last) {
        encode_parts(v, out, last, std::index_sequence_for<Ts...>{});
    }
    static bool decode(std::string_view& in, std::tuple<Ts...>& v, bool last) {
        return decode_parts(in, v, last, std::index_sequence_for<Ts...>{});
    }

private:
    template <std::size_t... I>
    static void encode_parts(const std::tuple<Ts...>& v, std::string& out, bool last,
                             std::index_sequence<I...>) {
        (key_codec<Ts>::encode(std::get<I>(v), out, last && I + 1 == sizeof...(Ts)), ...);
    }
    template <std::size_t... I>
    static bool decode_parts(std::string_view& in, std::tuple<Ts...>& v, bool last,
                             std::index_sequence<I...>) {
        return (key_codec<Ts>::decode(in, std::get<I>(v), last && I + 1 == sizeof...(Ts)) && ...);
    }
};

template <class A, class B>
struct key_codec<std::pair<A, B>> {
    static void encode(const std::pair<A, B>& v, std::string& out, bool last) {
        key_codec<A>::encode(v.first, out, false);
        key_codec<B>::encode(v.second, out, last);
    }
    static bool decode(std::string_view& in, std::pair<A, B>& v, bool last) {
        return key_codec<A>::decode(in, v.first, false) && key_codec<B>::decode(in, v.second, last);
    }
};

template <class K>
std::string encode_key(const K& key) {
    std::string out;
    key_codec<K>::encode(key, out, true);
    return out;
}

template <class K>
std::optional<K> decode_key(std::string_view encoded) {
    K key{};
    if (!key_codec<K>::decode(encoded, key, true) || !encoded.empty()) {
        return std::nullopt;
    }
    return key;
}

// The encoding shared by every key whose leading components equal `parts` (each one encoded
// as a non-final component). For a single-component key, use encode_key's bytes (or any
// byte prefix of them) instead.
template <class... Ts>
std::string key_prefix(const Ts&... parts) {
    std::string out;
    (key_codec<Ts>::encode(parts, out, false), ...);
    return out;
}

} // namespace glasnode::storage
