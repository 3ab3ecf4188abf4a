// The fuzz input read as a script of small integers, byte runs and raw doubles: the shared reader
// of the structure-aware targets. Past the input's end every read gives zeros, so any input is a
// complete script. Not thread-safe; the viewed bytes must outlive it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "overlay/wire/bytes.hpp"

namespace glasnode::fuzz {

class fuzz_input {
public:
    explicit fuzz_input(byte_view in) : m_in(in) {}
    bool done() const { return m_pos >= m_in.size(); }
    std::uint8_t u8() { return done() ? 0 : m_in[m_pos++]; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(u16()) << 16 | u16(); }
    // Up to n bytes of the input.
    byte_view take(std::size_t n) {
        n = std::min(n, m_in.size() - std::min(m_pos, m_in.size()));
        const byte_view out = m_in.subspan(m_pos, n);
        m_pos += n;
        return out;
    }
    // Eight bytes as a double, NaNs and infinities included.
    double raw_double() {
        std::uint8_t b[8]{};
        for (auto& x : b)
            x = u8();
        double d;
        std::memcpy(&d, b, sizeof d);
        return d;
    }

private:
    byte_view m_in;
    std::size_t m_pos = 0;
};

} // namespace glasnode::fuzz
