// A node's identity: an ed25519 key pair (libsodium crypto_sign). The node id IS the public
// key. On disk only the 32-byte seed is kept (libsodium's and libtorrent's 64-byte secret key
// layouts differ; both derive the same key pair from the seed), in `<data_dir>/node.key`,
// mode 0600. The secret never appears in logs or error messages.
//
// Thread-safety: const member functions may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "overlay/identity/random.hpp"
#include "overlay/wire/bytes.hpp"
#include "storage/result.hpp"

namespace glasnode::overlay {

using public_key = std::array<std::uint8_t, 32>;
using signature = std::array<std::uint8_t, 64>;
using key_seed = std::array<std::uint8_t, 32>;

inline constexpr const char* key_file_name = "node.key";

// Verifies a detached ed25519 signature; false for any mismatch or a malformed key.
bool verify(const public_key& key, byte_view message, const signature& sig) noexcept;

// The printable node id: lower-case hex of the public key.
std::string node_id_string(const public_key& key);
// The first 8 bytes of the node id in hex: enough to tell peers apart in a log line.
std::string short_id(const public_key& key);

// Key file format, version 1 (58 bytes): magic "glasnode", format version (1 byte),
// key type (1 byte, 1 = ed25519 seed), the 32-byte seed, then the first 16 bytes of
// BLAKE2b-256 over everything before it, so damage and foreign files are detected.
inline constexpr std::size_t key_file_size = 58;

class identity {
public:
    // Derives the key pair from a seed (tests, and keys loaded from disk).
    static identity from_seed(const key_seed& seed);
    static identity generate(random_source& rng);

    // Loads <dir>/node.key. errc::not_found if absent; errc::corrupt if it is not a key file;
    // errc::invalid_argument if its mode lets group or others read it (or write it: any
    // group/other permission bit is refused); errc::unsupported_version for a key file
    // written by a newer format; errc::io_error if the OS refuses.
    static result<identity> load(const std::filesystem::path& dir);
    // Loads the key, or creates <dir> (0700) and a new key (0600, written atomically: temp
    // file, fsync, rename) when there is none. An existing <dir> keeps its mode. If another
    // process creates the key at the same time, both end up with the same (first) key.
    static result<identity> load_or_create(const std::filesystem::path& dir, random_source& rng);

    identity(const identity&) = default;
    identity& operator=(const identity&) = default;
    ~identity();

    const public_key& key() const noexcept { return m_pk; }
    signature sign(byte_view message) const;
    // The 32-byte seed, for libraries that derive the same key pair from it (libtorrent's
    // BEP 44 signer). Secret: never log it; wipe copies with sodium_memzero.
    key_seed seed() const;

private:
    identity() = default;
    public_key m_pk{};
    std::array<std::uint8_t, 64> m_sk{}; // libsodium layout; wiped in the destructor
};

} // namespace glasnode::overlay
