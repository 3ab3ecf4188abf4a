#include "overlay/wire/canonical.hpp"

#include <cassert>
#include <limits>
#include <string>

namespace glasnode::wire {

void canonical_writer::be(std::uint64_t value, int size) {
    for (int shift = (size - 1) * 8; shift >= 0; shift -= 8) {
        m_out.push_back(static_cast<std::uint8_t>(value >> shift));
    }
}

void canonical_writer::header(std::uint8_t fix_base, std::uint8_t fix_max, std::uint8_t op8,
                              std::uint8_t op16, std::uint8_t op32, std::uint32_t size) {
    if (fix_max > 0 && size <= fix_max) {
        m_out.push_back(static_cast<std::uint8_t>(fix_base | size));
    } else if (op8 != 0 && size <= 0xff) {
        m_out.push_back(op8);
        be(size, 1);
    } else if (size <= 0xffff) {
        m_out.push_back(op16);
        be(size, 2);
    } else {
        m_out.push_back(op32);
        be(size, 4);
    }
}

canonical_writer& canonical_writer::array(std::uint32_t count) {
    header(0x90, 0x0f, 0, 0xdc, 0xdd, count);
    return *this;
}

canonical_writer& canonical_writer::uint(std::uint64_t value) {
    if (value <= 0x7f) {
        m_out.push_back(static_cast<std::uint8_t>(value));
    } else if (value <= 0xff) {
        m_out.push_back(0xcc);
        be(value, 1);
    } else if (value <= 0xffff) {
        m_out.push_back(0xcd);
        be(value, 2);
    } else if (value <= 0xffffffff) {
        m_out.push_back(0xce);
        be(value, 4);
    } else {
        m_out.push_back(0xcf);
        be(value, 8);
    }
    return *this;
}

canonical_writer& canonical_writer::sint(std::int64_t value) {
    if (value >= 0)
        return uint(static_cast<std::uint64_t>(value));
    const auto bits = static_cast<std::uint64_t>(value);
    if (value >= -32) {
        m_out.push_back(static_cast<std::uint8_t>(bits));
    } else if (value >= std::numeric_limits<std::int8_t>::min()) {
        m_out.push_back(0xd0);
        be(bits, 1);
    } else if (value >= std::numeric_limits<std::int16_t>::min()) {
        m_out.push_back(0xd1);
        be(bits, 2);
    } else if (value >= std::numeric_limits<std::int32_t>::min()) {
        m_out.push_back(0xd2);
        be(bits, 4);
    } else {
        m_out.push_back(0xd3);
        be(bits, 8);
    }
    return *this;
}

canonical_writer& canonical_writer::boolean(bool value) {
    m_out.push_back(value ? 0xc3 : 0xc2);
    return *this;
}

canonical_writer& canonical_writer::nil() {
    m_out.push_back(0xc0);
    return *this;
}

canonical_writer& canonical_writer::str(std::string_view value) {
    assert(value.size() <= std::numeric_limits<std::uint32_t>::max());
    header(0xa0, 0x1f, 0xd9, 0xda, 0xdb, static_cast<std::uint32_t>(value.size()));
    m_out.insert(m_out.end(), value.begin(), value.end());
    return *this;
}

canonical_writer& canonical_writer::bin(byte_view value) {
    assert(value.size() <= std::numeric_limits<std::uint32_t>::max());
    // bin has no fix form: bin8 even for empty input.
    header(0, 0, 0xc4, 0xc5, 0xc6, static_cast<std::uint32_t>(value.size()));
    m_out.insert(m_out.end(), value.begin(), value.end());
    return *this;
}

namespace {

// Walks one value at a time; recursion depth is bounded by limits.max_depth.
class canonical_checker {
public:
    canonical_checker(byte_view data, const decode_limits& limits)
        : m_data(data), m_limits(limits) {}

    status run() {
        if (m_data.empty())
            return fail(errc::protocol_error, "empty input");
        if (auto s = value(0); !s)
            return s;
        if (m_pos != m_data.size()) {
            return fail(errc::protocol_error,
                        std::to_string(m_data.size() - m_pos) + " trailing bytes");
        }
        return {};
    }

private:
    status fail(errc code, const std::string& what) const {
        return make_error(code,
                          "canonical msgpack at offset " + std::to_string(m_at) + ": " + what);
    }

    bool read(int size, std::uint64_t& out) {
        if (m_data.size() - m_pos < static_cast<std::size_t>(size))
            return false;
        out = 0;
        for (int i = 0; i < size; ++i)
            out = out << 8 | m_data[m_pos++];
        return true;
    }

    status truncated() const { return fail(errc::protocol_error, "truncated"); }
    status not_smallest() const {
        return fail(errc::protocol_error, "value not in its smallest encoding");
    }

    status skip_body(std::uint64_t size, std::size_t limit, const char* kind) {
        if (size > limit) {
            return fail(errc::limit_exceeded, std::string(kind) + " of " + std::to_string(size) +
                                                  " bytes exceeds " + std::to_string(limit));
        }
        if (m_data.size() - m_pos < size)
            return truncated();
        m_pos += static_cast<std::size_t>(size);
        return {};
    }

    status elements(std::uint64_t count, std::size_t depth) {
        if (count > m_limits.max_array) {
            return fail(errc::limit_exceeded, "array of " + std::to_string(count) +
                                                  " elements exceeds " +
                                                  std::to_string(m_limits.max_array));
        }
        if (depth + 1 > m_limits.max_depth) {
            return fail(errc::limit_exceeded,
                        "nesting deeper than " + std::to_string(m_limits.max_depth));
        }
        for (std::uint64_t i = 0; i < count; ++i) {
            if (auto s = value(depth + 1); !s)
                return s;
        }
        return {};
    }

    status value(std::size_t depth) {
        m_at = m_pos;
        if (m_pos >= m_data.size())
            return truncated();
        const std::uint8_t op = m_data[m_pos++];
        std::uint64_t v = 0;
        if (op <= 0x7f || op >= 0xe0)
            return {}; // positive / negative fixint
        if (op >= 0xa0 && op <= 0xbf)
            return skip_body(op & 0x1f, m_limits.max_str, "str");
        if (op >= 0x90 && op <= 0x9f)
            return elements(op & 0x0f, depth);
        if ((op >= 0x80 && op <= 0x8f) || op == 0xde || op == 0xdf) {
            return fail(errc::protocol_error, "maps are not canonical");
        }
        switch (op) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
            return {};
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf: {
            const int size = 1 << (op - 0xcc);
            if (!read(size, v))
                return truncated();
            const std::uint64_t floor = size == 1 ? 0x80 : (std::uint64_t{1} << (size * 4));
            if (v < floor)
                return not_smallest();
            return {};
        }
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            const int size = 1 << (op - 0xd0);
            if (!read(size, v))
                return truncated();
            // Sign-extend, then require a negative value below the next smaller form's range.
            const int bits = size * 8;
            std::int64_t s = 0;
            if (bits == 64) {
                s = static_cast<std::int64_t>(v);
            } else {
                const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
                s = static_cast<std::int64_t>((v ^ sign) - sign);
            }
            const std::int64_t ceiling = size == 1 ? -33 : -(std::int64_t{1} << (size * 4 - 1)) - 1;
            if (s > ceiling)
                return not_smallest();
            return {};
        }
        case 0xd9:
        case 0xda:
        case 0xdb: {
            const int size = 1 << (op - 0xd9);
            if (!read(size, v))
                return truncated();
            const std::uint64_t floor = size == 1 ? 32 : (std::uint64_t{1} << (size * 4));
            if (v < floor)
                return not_smallest();
            return skip_body(v, m_limits.max_str, "str");
        }
        case 0xc4:
        case 0xc5:
        case 0xc6: {
            const int size = 1 << (op - 0xc4);
            if (!read(size, v))
                return truncated();
            const std::uint64_t floor = size == 1 ? 0 : (std::uint64_t{1} << (size * 4));
            if (v < floor)
                return not_smallest();
            return skip_body(v, m_limits.max_bin, "bin");
        }
        case 0xdc:
        case 0xdd: {
            const int size = op == 0xdc ? 2 : 4;
            if (!read(size, v))
                return truncated();
            const std::uint64_t floor = size == 2 ? 16 : 0x10000;
            if (v < floor)
                return not_smallest();
            return elements(v, depth);
        }
        case 0xca:
        case 0xcb:
            return fail(errc::protocol_error, "floats are not canonical");
        default:
            return fail(errc::protocol_error, "ext or reserved type 0x" + to_hex({&op, 1}));
        }
    }

    byte_view m_data;
    const decode_limits& m_limits;
    std::size_t m_pos = 0;
    std::size_t m_at = 0;
};

} // namespace

status check_canonical(byte_view data, const decode_limits& limits) {
    return canonical_checker(data, limits).run();
}

result<msgpack::object_handle> decode_canonical(byte_view data, const decode_limits& limits) {
    if (auto s = check_canonical(data, limits); !s)
        return s.err();
    const msgpack::unpack_limit limit(limits.max_array, limits.max_map, limits.max_str,
                                      limits.max_bin, limits.max_ext, limits.max_depth);
    try {
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(reinterpret_cast<const char*>(data.data()), data.size(), offset,
                            nullptr, nullptr, limit);
        return result<msgpack::object_handle>(std::move(handle));
    } catch (const std::exception& e) {
        // The checker accepted it, so only resource exhaustion can land here.
        return make_error(errc::limit_exceeded, std::string("canonical msgpack: ") + e.what());
    }
}

} // namespace glasnode::wire
