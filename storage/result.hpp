// glasnode's error vocabulary: every fallible operation on a storage, control or decoding
// path returns `result<T>` (a value or an `error`) instead of throwing. It lives in the
// bottom layer (storage) as the header-only target glasnode_result, so that every layer uses
// it without linking LMDB.
//
// Thread-safety: plain value types; no shared state.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace glasnode {

// Broad classes of failure. The caller decides what to do from the code; the reason is for
// people (logs, CLI messages) and is never parsed.
enum class errc {
    invalid_argument,    // the caller passed something unusable (bad config value, bad key)
    io_error,            // the operating system refused (open, write, fsync, socket)
    not_found,           // a lookup found nothing
    corrupt,             // stored data does not decode
    protocol_error,      // a peer sent bytes that do not follow the protocol
    limit_exceeded,      // a size, count, depth or rate bound was hit
    unsupported_version, // a peer or a file speaks a version we do not
    auth_failed,         // a signature, MAC or handshake did not verify
    timeout,             // a deadline passed
    closed,              // the other side or the object is gone
    busy,                // a bounded resource is full; try later
};

constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::invalid_argument:
        return "invalid_argument";
    case errc::io_error:
        return "io_error";
    case errc::not_found:
        return "not_found";
    case errc::corrupt:
        return "corrupt";
    case errc::protocol_error:
        return "protocol_error";
    case errc::limit_exceeded:
        return "limit_exceeded";
    case errc::unsupported_version:
        return "unsupported_version";
    case errc::auth_failed:
        return "auth_failed";
    case errc::timeout:
        return "timeout";
    case errc::closed:
        return "closed";
    case errc::busy:
        return "busy";
    }
    return "unknown";
}

struct error {
    errc code;
    std::string reason;

    // "protocol_error: frame length 4294967295 exceeds limit 1048576"
    std::string describe() const {
        std::string s(to_string(code));
        if (!reason.empty()) {
            s += ": ";
            s += reason;
        }
        return s;
    }
};

inline error make_error(errc code, std::string reason) {
    return error{code, std::move(reason)};
}

// A value of T or an error. Accessing the wrong alternative is a programming error (asserted).
template <class T>
class [[nodiscard]] result {
public:
    result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    result(error e) : m_v(std::in_place_index<1>, std::move(e)) {}

    bool ok() const noexcept { return m_v.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(m_v);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(m_v);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(m_v));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const error& err() const {
        assert(!ok());
        return std::get<1>(m_v);
    }

private:
    std::variant<T, error> m_v;
};

// Success or an error, for operations with nothing to return.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(error e) : m_err(std::move(e)), m_failed(true) {}

    bool ok() const noexcept { return !m_failed; }
    explicit operator bool() const noexcept { return ok(); }
    const error& err() const {
        assert(!ok());
        return m_err;
    }

private:
    error m_err{errc::invalid_argument, {}};
    bool m_failed = false;
};

using status = result<void>;

} // namespace glasnode
