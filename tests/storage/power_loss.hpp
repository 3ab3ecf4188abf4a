// What the power-loss shim (power_loss_shim.cpp, loaded with LD_PRELOAD) and the tests that
// drive it agree on: how the shim is configured and how the process it ran in ends.
#pragma once

namespace glasnode::storage::testing {

// Environment of a process run under the shim.
inline constexpr const char* power_loss_dir_env = "GLASNODE_POWER_LOSS_DIR"; // LMDB directory
inline constexpr const char* power_loss_at_env = "GLASNODE_POWER_LOSS_AT";   // KIND:N
inline constexpr const char* power_loss_log_env = "GLASNODE_POWER_LOSS_LOG"; // one line per loss

// The process lost its power at the chosen point (its watched files are back to their synced
// image).
inline constexpr int power_loss_exit_status = 97;
// The process did something to a watched file that the shim cannot model.
inline constexpr int unmodelled_exit_status = 98;

} // namespace glasnode::storage::testing
