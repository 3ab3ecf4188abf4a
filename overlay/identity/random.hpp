// Injected randomness. Protocol cores never call the OS for random bytes: they take a
// random_source, so the node passes system_random and tests and the simulator pass a
// seeded_random whose stream is fixed by its seed.
//
// Thread-safety: an instance is used from one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace glasnode {

class random_source {
public:
    virtual ~random_source() = default;
    virtual void fill(std::span<std::uint8_t> out) = 0;

    std::uint64_t next_u64();
    // Uniform in [0, bound); bound > 0.
    std::uint64_t uniform(std::uint64_t bound);
};

// Cryptographically secure randomness from libsodium (getrandom).
class system_random final : public random_source {
public:
    void fill(std::span<std::uint8_t> out) override;
};

// Deterministic ChaCha20 stream (libsodium randombytes_buf_deterministic) keyed by a 32-byte
// seed. Same seed, same sequence of fill() sizes -> same bytes. Never for real keys.
class seeded_random final : public random_source {
public:
    explicit seeded_random(std::uint64_t seed);
    void fill(std::span<std::uint8_t> out) override;

private:
    std::array<std::uint8_t, 32> m_key{};
    std::uint64_t m_counter = 0;
};

} // namespace glasnode
