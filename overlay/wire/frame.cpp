#include "overlay/wire/frame.hpp"

#include <algorithm>
#include <cassert>
#include <limits>
#include <string>

namespace glasnode::wire {

namespace {
void append_header(bytes& out, std::size_t payload_size) {
    assert(payload_size <= std::numeric_limits<std::uint32_t>::max());
    const auto n = static_cast<std::uint32_t>(payload_size);
    out.push_back(static_cast<std::uint8_t>(n >> 24));
    out.push_back(static_cast<std::uint8_t>(n >> 16));
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
}
} // namespace

void append_frame(bytes& out, byte_view payload) {
    append_header(out, payload.size());
    out.insert(out.end(), payload.begin(), payload.end());
}

std::size_t begin_frame(bytes& out, std::size_t payload_size) {
    append_header(out, payload_size);
    const std::size_t offset = out.size();
    out.resize(offset + payload_size);
    return offset;
}

frame_decoder::frame_decoder(std::size_t max_payload) : m_max_payload(max_payload) {}

std::size_t frame_decoder::buffered() const noexcept {
    return m_header_have + m_payload.size();
}

status frame_decoder::feed(byte_view in, std::vector<bytes>& frames) {
    if (m_error)
        return *m_error;
    for (;;) {
        if (m_header_have < frame_header_size) {
            if (in.empty())
                break;
            const std::size_t take = std::min(frame_header_size - m_header_have, in.size());
            std::copy_n(in.begin(), take, m_header + m_header_have);
            m_header_have += take;
            in = in.subspan(take);
            if (m_header_have < frame_header_size)
                break;
            const std::uint32_t n = std::uint32_t{m_header[0]} << 24 |
                                    std::uint32_t{m_header[1]} << 16 |
                                    std::uint32_t{m_header[2]} << 8 | std::uint32_t{m_header[3]};
            if (n > m_max_payload) {
                m_error = make_error(errc::limit_exceeded, "frame length " + std::to_string(n) +
                                                               " exceeds limit " +
                                                               std::to_string(m_max_payload));
                return *m_error;
            }
            m_need = n;
            m_payload.clear();
            // Grow with the data actually received: a bare length prefix must not make us
            // allocate the whole limit.
            m_payload.reserve(std::min<std::size_t>(n, 16 * 1024));
        }
        const std::size_t take = std::min(m_need, in.size());
        m_payload.insert(m_payload.end(), in.begin(),
                         in.begin() + static_cast<std::ptrdiff_t>(take));
        m_need -= take;
        in = in.subspan(take);
        if (m_need > 0)
            break; // `in` is exhausted mid-payload
        frames.push_back(std::move(m_payload));
        m_payload = {};
        m_header_have = 0;
    }
    return {};
}

} // namespace glasnode::wire
