// Canonical msgpack for signed objects (feed entries, summaries, collector lists).
//
// A signed object is encoded once, by canonical_writer, and the signature covers exactly
// those bytes. It travels as the bytes themselves (a bin field next to a bin signature), so a
// verifier checks what it received and never a re-encoding.
//
// Canonical form (one encoding per value, so equal objects have equal bytes and hashes):
//   - fields in a fixed order inside arrays; maps are not allowed;
//   - every integer in its smallest msgpack form: non-negative values always in the unsigned
//     family (positive fixint, uint8, uint16, uint32, uint64), negative values in the smallest
//     of negative fixint, int8, int16, int32, int64;
//   - str, bin and array headers in their smallest form (fixstr/str8/str16/str32,
//     bin8/bin16/bin32, fixarray/array16/array32);
//   - nil, true, false as usual;
//   - no floats: quantities are integers in fixed units (bit/s, permille, milliseconds);
//   - no ext types.
// check_canonical() accepts exactly the byte strings canonical_writer can produce.
//
// Errors: check_canonical/decode_canonical never throw; errc::protocol_error for bytes that
// are not canonical (the reason names the offset), errc::limit_exceeded over decode_limits.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string_view>

#include <msgpack.hpp>

#include "overlay/wire/bytes.hpp"
#include "overlay/wire/message.hpp"
#include "storage/result.hpp"

namespace glasnode::wire {

class canonical_writer {
public:
    // Starts an array; the next `count` values written are its elements.
    canonical_writer& array(std::uint32_t count);
    canonical_writer& uint(std::uint64_t value);
    canonical_writer& sint(std::int64_t value);
    canonical_writer& boolean(bool value);
    canonical_writer& nil();
    // Sizes above 4 GiB - 1 are a programming error (asserted).
    canonical_writer& str(std::string_view value);
    canonical_writer& bin(byte_view value);

    const bytes& data() const noexcept { return m_out; }
    bytes take() noexcept { return std::move(m_out); }

private:
    void header(std::uint8_t fix_base, std::uint8_t fix_max, std::uint8_t op8, std::uint8_t op16,
                std::uint8_t op32, std::uint32_t size);
    void be(std::uint64_t value, int size);
    bytes m_out;
};

// Succeeds iff `data` is exactly one canonical value (no trailing bytes) within `limits`.
status check_canonical(byte_view data, const decode_limits& limits = {});

// check_canonical, then parses into msgpack objects for a field_reader. The handle owns
// copies of every str/bin, so `data` may be dropped.
result<msgpack::object_handle> decode_canonical(byte_view data, const decode_limits& limits = {});

} // namespace glasnode::wire
