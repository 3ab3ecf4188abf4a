// Internal to the overlay layer: libsodium must be initialised once before its primitives are
// used (it picks implementations and opens the RNG). Thread-safe, idempotent, cheap after the
// first call. Aborts if libsodium cannot initialise: no key can be made or checked without it.
#pragma once

namespace glasnode::overlay {

void ensure_sodium() noexcept;

} // namespace glasnode::overlay
