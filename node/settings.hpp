// The node's settings: ONE table (settings.cpp) with a key, a default and a comment per entry.
// The same table parses the config file (TOML, top-level `key = value`), the command line
// (`--set key=value` and the dedicated flags), prints the defaults (`glasnode config`) and
// generates docs/configuration.md. Adding a setting means adding one row.
//
// Errors: a bad value or an unknown key gives errc::invalid_argument whose reason is one line
// naming the key ("control_port: expected an integer in 1..65535, got \"x\"").
// Thread-safety: plain values; the table is immutable.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "storage/result.hpp"

namespace glasnode::node {

struct settings {
    std::filesystem::path data_dir;
    std::string bind_address;
    std::uint16_t control_port;
    std::uint16_t bt_port;
    std::uint16_t neutral_port;
    std::string api_address;
    std::uint16_t api_port;
    std::string log_level;
    std::uint32_t max_control_connections;
    std::uint32_t max_frame_bytes;
    std::chrono::milliseconds handshake_timeout;
    std::chrono::milliseconds idle_timeout;
    std::uint64_t storage_map_size;
    std::uint32_t provider_max_rate_mbit; // 0: pace as each agent asks

    // Every entry at its default.
    static settings defaults();
};

struct setting_def {
    std::string_view key;
    std::string_view default_value; // as written in a config file
    std::string_view comment;
    std::function<status(settings&, std::string_view)> parse;
    std::function<std::string(const settings&)> show;
};

std::span<const setting_def> setting_table();

// Sets one entry from its textual form.
status apply_setting(settings& s, std::string_view key, std::string_view value);
// Applies every key of a TOML file; unknown keys and bad values are errors naming the key
// (and the file). A missing file is errc::not_found.
status apply_config_file(settings& s, const std::filesystem::path& file);

// The defaults as a commented TOML file.
std::string defaults_as_toml();
// The table as Markdown (docs/configuration.md is this output).
std::string settings_as_markdown();

// $GLASNODE_DATA_DIR, else $XDG_DATA_HOME/glasnode, else ~/.local/share/glasnode.
std::filesystem::path default_data_dir();

} // namespace glasnode::node
