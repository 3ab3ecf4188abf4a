// Byte buffer vocabulary shared by the wire codec, the secure channel and the flow engine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace glasnode {

using bytes = std::vector<std::uint8_t>;
using byte_view = std::span<const std::uint8_t>;

// Lower-case hex of `data` ("" for empty input).
std::string to_hex(byte_view data);
// Parses lower- or upper-case hex; false if `hex` has odd length or a non-hex character.
bool from_hex(std::string_view hex, bytes& out);

inline byte_view as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

} // namespace glasnode
