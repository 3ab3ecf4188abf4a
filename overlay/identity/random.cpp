#include "overlay/identity/random.hpp"

#include <cassert>
#include <cstdlib>

#include <sodium.h>

#include "overlay/identity/sodium_init.hpp"

namespace glasnode {

namespace overlay {
void ensure_sodium() noexcept {
    static const bool ready = [] {
        return sodium_init() >= 0;
    }();
    if (!ready)
        std::abort();
}
} // namespace overlay

namespace {
constexpr char seeded_domain[] = "glasnode/seeded_random/v1";
} // namespace

std::uint64_t random_source::next_u64() {
    std::array<std::uint8_t, 8> b{};
    fill(b);
    std::uint64_t v = 0;
    for (std::uint8_t x : b)
        v = v << 8 | x;
    return v;
}

std::uint64_t random_source::uniform(std::uint64_t bound) {
    assert(bound > 0);
    if (bound <= 1)
        return 0;
    // Reject the lowest (2^64 mod bound) values so every residue is equally likely.
    const std::uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        const std::uint64_t r = next_u64();
        if (r >= threshold)
            return r % bound;
    }
}

void system_random::fill(std::span<std::uint8_t> out) {
    overlay::ensure_sodium();
    if (!out.empty())
        randombytes_buf(out.data(), out.size());
}

seeded_random::seeded_random(std::uint64_t seed) {
    overlay::ensure_sodium();
    std::array<std::uint8_t, 8> s{};
    for (int i = 0; i < 8; ++i)
        s[i] = static_cast<std::uint8_t>(seed >> (8 * i));
    crypto_generichash(m_key.data(), m_key.size(), s.data(), s.size(),
                       reinterpret_cast<const unsigned char*>(seeded_domain),
                       sizeof seeded_domain - 1);
}

void seeded_random::fill(std::span<std::uint8_t> out) {
    // Each call reads its own ChaCha20 stream, keyed by BLAKE2b(seed key, call number), so
    // successive calls never repeat bytes (randombytes_buf_deterministic restarts its stream
    // on every call).
    std::array<std::uint8_t, 8> counter{};
    for (int i = 0; i < 8; ++i)
        counter[i] = static_cast<std::uint8_t>(m_counter >> (8 * i));
    ++m_counter;
    std::array<std::uint8_t, randombytes_SEEDBYTES> call_seed{};
    crypto_generichash(call_seed.data(), call_seed.size(), counter.data(), counter.size(),
                       m_key.data(), m_key.size());
    if (!out.empty())
        randombytes_buf_deterministic(out.data(), out.size(), call_seed.data());
    sodium_memzero(call_seed.data(), call_seed.size());
}

namespace {
constexpr std::uint64_t splitmix_gamma = 0x9e3779b97f4a7c15ULL;
} // namespace

std::uint64_t splitmix_random::mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

splitmix_random splitmix_random::stream(std::uint64_t master, std::uint64_t index) noexcept {
    return splitmix_random(mix(master + (index + 1) * splitmix_gamma));
}

std::uint64_t splitmix_random::next_u64() {
    m_state += splitmix_gamma;
    return mix(m_state);
}

void splitmix_random::fill(std::span<std::uint8_t> out) {
    std::size_t i = 0;
    while (i < out.size()) {
        const std::uint64_t word = next_u64();
        for (int b = 0; b < 8 && i < out.size(); ++b, ++i)
            out[i] = static_cast<std::uint8_t>(word >> (56 - 8 * b));
    }
}

} // namespace glasnode
