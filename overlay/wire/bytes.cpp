#include "overlay/wire/bytes.hpp"

namespace glasnode {

std::string to_hex(byte_view data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(data.size() * 2);
    for (std::uint8_t b : data) {
        s.push_back(digits[b >> 4]);
        s.push_back(digits[b & 0xf]);
    }
    return s;
}

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
} // namespace

bool from_hex(std::string_view hex, bytes& out) {
    if (hex.size() % 2 != 0)
        return false;
    bytes r;
    r.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = hex_value(hex[i]);
        int lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        r.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    out = std::move(r);
    return true;
}

} // namespace glasnode
