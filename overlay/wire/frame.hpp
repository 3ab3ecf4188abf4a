// Length-prefixed framing for the control channel (sans-IO).
//
// A frame is a 4-byte big-endian payload length followed by the payload. The decoder takes
// whatever bytes the transport delivered (any split, one byte at a time included) and hands
// out complete payloads. It buffers at most one incomplete frame, so its memory is bounded by
// `max_payload + frame_header_size`.
//
// Errors: a length prefix above `max_payload` fails the decoder with errc::limit_exceeded
// before any payload byte is buffered. A failed decoder stays failed (every later feed()
// returns the same error): the caller must close the connection, since the stream can no
// longer be resynchronised.
//
// Thread-safety: none; one decoder per connection, used from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "overlay/wire/bytes.hpp"
#include "storage/result.hpp"

namespace glasnode::wire {

inline constexpr std::size_t frame_header_size = 4;

// Appends one frame carrying `payload` to `out`. The caller keeps payloads within the peer's
// limit; a payload over 4 GiB - 1 is a programming error (asserted).
void append_frame(bytes& out, byte_view payload);

// Appends the header of a frame of `payload_size` bytes and grows `out` by that many bytes,
// for callers that write the payload in place (the secure channel encrypts into it). Returns
// the offset of the payload in `out`. Same size rule as append_frame.
std::size_t begin_frame(bytes& out, std::size_t payload_size);

class frame_decoder {
public:
    explicit frame_decoder(std::size_t max_payload);

    // Consumes all of `in`; each payload completed by it is appended to `frames`, in order.
    // Frames completed before an error are still appended.
    status feed(byte_view in, std::vector<bytes>& frames);

    bool failed() const noexcept { return m_error.has_value(); }
    // Bytes of the current incomplete frame held so far (header included).
    std::size_t buffered() const noexcept;
    std::size_t max_payload() const noexcept { return m_max_payload; }

private:
    std::size_t m_max_payload;
    std::uint8_t m_header[frame_header_size]{};
    std::size_t m_header_have = 0;
    std::size_t m_need = 0; // payload bytes still missing once the header is complete
    bytes m_payload;
    std::optional<error> m_error;
};

} // namespace glasnode::wire
