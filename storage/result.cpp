#include "storage/result.hpp"

namespace glasnode {

std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::io_error: return "io_error";
    case errc::not_found: return "not_found";
    case errc::corrupt: return "corrupt";
    case errc::protocol_error: return "protocol_error";
    case errc::limit_exceeded: return "limit_exceeded";
    case errc::unsupported_version: return "unsupported_version";
    case errc::auth_failed: return "auth_failed";
    case errc::timeout: return "timeout";
    case errc::closed: return "closed";
    case errc::busy: return "busy";
    }
    return "unknown";
}

std::string error::describe() const {
    std::string s(to_string(code));
    if (!reason.empty()) {
        s += ": ";
        s += reason;
    }
    return s;
}

} // namespace glasnode
