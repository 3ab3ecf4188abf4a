// The record that the crash test's child process writes, shared by both sides so that the
// parent can check every byte of what the child committed.
#pragma once

#include <cstdint>
#include <string>

#include <msgpack.hpp>

namespace glasnode::storage::testing {

inline constexpr const char* crash_table_name = "records";

struct crash_record {
    std::uint64_t id = 0;
    std::string payload;
    MSGPACK_DEFINE(id, payload)
};

// Deterministic contents; sizes from 1 byte to about 6 KB, so that some records need
// overflow pages and the database grows past its initial map.
inline std::string crash_payload(std::uint64_t id) {
    std::size_t size = 1 + static_cast<std::size_t>((id * 2654435761u) % 6000);
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        s[i] = static_cast<char>('a' + (id + i) % 26);
    }
    return s;
}

} // namespace glasnode::storage::testing
