// Table values are msgpack (msgpack-cxx): any type with MSGPACK_DEFINE or a msgpack adaptor.
// A value type must own its data (std::string, not std::string_view): decoded objects outlive
// the buffer they were decoded from.
//
// Decoding treats the stored bytes as untrusted (a damaged file or an older writer): every
// container and string length is bounded by the size of the buffer, nesting depth by
// max_value_depth, trailing bytes are rejected, and every msgpack exception is caught.
// Failures are errc::corrupt. Encoding failures (which msgpack reports only for sizes above
// 4 GiB) are errc::invalid_argument.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "storage/result.hpp"

namespace glasnode::storage {

inline constexpr std::size_t max_value_depth = 64;

namespace detail {

struct string_sink {
    std::string& out;
    void write(const char* data, std::size_t size) { out.append(data, size); }
};

} // namespace detail

template <class V>
result<std::string> encode_value(const V& value) {
    try {
        std::string out;
        detail::string_sink sink{out};
        msgpack::pack(sink, value);
        return out;
    } catch (const std::exception& e) {
        return make_error(errc::invalid_argument, std::string("msgpack encode: ") + e.what());
    }
}

template <class V>
result<V> decode_value(std::string_view data) {
    try {
        const std::size_t n = data.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, max_value_depth);
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(data.data(), data.size(), offset, nullptr, nullptr, limit);
        if (offset != data.size()) {
            return make_error(errc::corrupt,
                              "msgpack decode: " + std::to_string(data.size() - offset) +
                                  " trailing bytes after the value");
        }
        return handle.get().as<V>();
    } catch (const std::exception& e) {
        return make_error(errc::corrupt, std::string("msgpack decode: ") + e.what());
    }
}

} // namespace glasnode::storage
