// Injected randomness. Protocol cores never call the OS for random bytes: they take a
// random_source, so the node passes system_random, tests pass a seeded_random whose stream is
// fixed by its seed, and the simulator passes splitmix_random (fixed by its seed and cheap).
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

    // Eight bytes of fill() read big-endian; a source with a cheaper word overrides it and
    // must keep that equivalence (the same stream through either call gives the same values).
    virtual std::uint64_t next_u64();
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

// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
// 2014): one add and two multiply-xorshifts per 64-bit word. Deterministic and portable (the
// same seed gives the same words everywhere); statistically good enough for simulated noise,
// schedules and tokens; predictable, so never for keys or anything a peer must not guess.
// next_u64() is the splitmix64 step; fill() writes successive words big-endian (so that eight
// bytes of fill() equal one next_u64()), dropping the unused tail of the last word.
class splitmix_random final : public random_source {
public:
    explicit splitmix_random(std::uint64_t seed) noexcept : m_state(seed) {}

    // An independent stream for `index` (a node of a simulation) under one master seed: the
    // index-th word of splitmix_random(master) seeds it, so streams start far apart in the
    // 2^64 cycle and adding a node never changes the streams of the others.
    static splitmix_random stream(std::uint64_t master, std::uint64_t index) noexcept;

    void fill(std::span<std::uint8_t> out) override;
    std::uint64_t next_u64() override;

    // The splitmix64 output function (a bijective 64-bit mix), exposed for hashing seeds.
    static std::uint64_t mix(std::uint64_t z) noexcept;

private:
    std::uint64_t m_state;
};

} // namespace glasnode
