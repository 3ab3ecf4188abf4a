#include "node/settings.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include <boost/asio/ip/address.hpp>
#include <toml++/toml.h>

namespace glasnode::node {
namespace {

status bad(std::string_view key, std::string_view expected, std::string_view got) {
    return make_error(errc::invalid_argument, std::string(key) + ": expected " +
                                                  std::string(expected) + ", got \"" +
                                                  std::string(got) + "\"");
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty())
        return false;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && p == text.data() + text.size();
}

// "1073741824", "512MiB", "1GiB", "64KiB".
bool parse_size(std::string_view text, std::uint64_t& out) {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 4> units{{
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
    }};
    std::uint64_t mult = 1;
    for (auto [suffix, m] : units) {
        if (text.size() > suffix.size() && text.ends_with(suffix)) {
            text.remove_suffix(suffix.size());
            mult = m;
            break;
        }
    }
    std::uint64_t v = 0;
    if (!parse_u64(text, v) || v > std::numeric_limits<std::uint64_t>::max() / mult)
        return false;
    out = v * mult;
    return true;
}

// "250ms", "5s", "2m", "1h"; a bare number is milliseconds.
bool parse_duration(std::string_view text, std::chrono::milliseconds& out) {
    std::uint64_t mult = 1;
    if (text.ends_with("ms")) {
        text.remove_suffix(2);
    } else if (text.ends_with("s")) {
        text.remove_suffix(1);
        mult = 1000;
    } else if (text.ends_with("m")) {
        text.remove_suffix(1);
        mult = 60'000;
    } else if (text.ends_with("h")) {
        text.remove_suffix(1);
        mult = 3'600'000;
    }
    std::uint64_t v = 0;
    if (!parse_u64(text, v) || v > (1ull << 40) / mult)
        return false;
    out = std::chrono::milliseconds(v * mult);
    return true;
}

std::string show_duration(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0)
        return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0)
        return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1000 == 0)
        return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::string show_size(std::uint64_t v) {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 4> units{{
        {"TiB", 1ull << 40},
        {"GiB", 1ull << 30},
        {"MiB", 1ull << 20},
        {"KiB", 1ull << 10},
    }};
    for (auto [suffix, m] : units) {
        if (v != 0 && v % m == 0)
            return std::to_string(v / m) + std::string(suffix);
    }
    return std::to_string(v);
}

// Row builders: each binds a member and its validation, so a row is one line in the table.
template <class T>
setting_def port_row(std::string_view key, std::string_view def, std::string_view comment,
                     T settings::*member) {
    return {key, def, comment,
            [key, member](settings& s, std::string_view v) -> status {
                std::uint64_t n = 0;
                if (!parse_u64(v, n) || n > 65535)
                    return bad(key, "a port number in 0..65535 (0: any free port)", v);
                s.*member = static_cast<T>(n);
                return {};
            },
            [member](const settings& s) {
                return std::to_string(s.*member);
            }};
}

setting_def count_row(std::string_view key, std::string_view def, std::string_view comment,
                      std::uint32_t settings::*member, std::uint32_t lo, std::uint32_t hi) {
    return {key, def, comment,
            [=](settings& s, std::string_view v) -> status {
                std::uint64_t n = 0;
                if (!parse_u64(v, n) || n < lo || n > hi)
                    return bad(
                        key, "an integer in " + std::to_string(lo) + ".." + std::to_string(hi), v);
                s.*member = static_cast<std::uint32_t>(n);
                return {};
            },
            [member](const settings& s) {
                return std::to_string(s.*member);
            }};
}

setting_def size_row(std::string_view key, std::string_view def, std::string_view comment,
                     std::uint64_t settings::*member, std::uint64_t lo, std::uint64_t hi) {
    return {key, def, comment,
            [=](settings& s, std::string_view v) -> status {
                std::uint64_t n = 0;
                if (!parse_size(v, n) || n < lo || n > hi)
                    return bad(key, "a size in " + show_size(lo) + ".." + show_size(hi), v);
                s.*member = n;
                return {};
            },
            [member](const settings& s) {
                return show_size(s.*member);
            }};
}

setting_def duration_row(std::string_view key, std::string_view def, std::string_view comment,
                         std::chrono::milliseconds settings::*member, std::chrono::milliseconds lo,
                         std::chrono::milliseconds hi) {
    return {key, def, comment,
            [=](settings& s, std::string_view v) -> status {
                std::chrono::milliseconds d{};
                if (!parse_duration(v, d) || d < lo || d > hi)
                    return bad(key,
                               "a duration in " + show_duration(lo) + ".." + show_duration(hi) +
                                   " (e.g. 250ms, 5s, 2m)",
                               v);
                s.*member = d;
                return {};
            },
            [member](const settings& s) {
                return show_duration(s.*member);
            }};
}

setting_def address_row(std::string_view key, std::string_view def, std::string_view comment,
                        std::string settings::*member) {
    return {key, def, comment,
            [key, member](settings& s, std::string_view v) -> status {
                boost::system::error_code ec;
                boost::asio::ip::make_address(std::string(v), ec);
                if (ec)
                    return bad(key, "an IPv4 or IPv6 address literal", v);
                s.*member = std::string(v);
                return {};
            },
            [member](const settings& s) {
                return s.*member;
            }};
}

const std::vector<setting_def>& table() {
    static const std::vector<setting_def> rows = [] {
        std::vector<setting_def> t;
        t.push_back({"data_dir", "", // empty: default_data_dir()
                     "Directory holding the node key (node.key, mode 0600) and the LMDB "
                     "database. Empty means $GLASNODE_DATA_DIR, $XDG_DATA_HOME/glasnode or "
                     "~/.local/share/glasnode.",
                     [](settings& s, std::string_view v) -> status {
                         s.data_dir = v.empty() ? default_data_dir() : std::filesystem::path(v);
                         return {};
                     },
                     [](const settings& s) {
                         return s.data_dir.string();
                     }});
        t.push_back(address_row("bind", "0.0.0.0",
                                "Address the overlay control port and the test ports listen on.",
                                &settings::bind_address));
        t.push_back(port_row("control_port", "9773",
                             "TCP port of the encrypted overlay control channel (negotiation, "
                             "firewall check, gossip).",
                             &settings::control_port));
        t.push_back(port_row("bt_port", "6881",
                             "TCP test port that looks like a BitTorrent client's (6881 is the "
                             "classic default that port-based shapers target).",
                             &settings::bt_port));
        t.push_back(port_row("neutral_port", "9775",
                             "TCP test port with no BitTorrent association, for port-based "
                             "comparisons.",
                             &settings::neutral_port));
        t.push_back(address_row("api_address", "127.0.0.1",
                                "Address of the local JSON API and web UI. Keep it on loopback: "
                                "the API is not authenticated.",
                                &settings::api_address));
        t.push_back(port_row("api_port", "9774", "TCP port of the local JSON API and web UI.",
                             &settings::api_port));
        t.push_back({"log_level", "info", "One of trace, debug, info, warn, error, off.",
                     [](settings& s, std::string_view v) -> status {
                         static constexpr std::array<std::string_view, 6> levels{
                             "trace", "debug", "info", "warn", "error", "off"};
                         if (std::find(levels.begin(), levels.end(), v) == levels.end())
                             return bad("log_level", "one of trace, debug, info, warn, error, off",
                                        v);
                         s.log_level = std::string(v);
                         return {};
                     },
                     [](const settings& s) {
                         return s.log_level;
                     }});
        t.push_back(count_row("max_control_connections", "64",
                              "Control connections served at once; more are closed on accept.",
                              &settings::max_control_connections, 1, 100000));
        t.push_back(count_row("max_frame_bytes", "262144",
                              "Largest control frame accepted from a peer, in bytes.",
                              &settings::max_frame_bytes, 1024, 16u << 20));
        t.push_back(duration_row(
            "handshake_timeout", "5s",
            "Time a peer has to complete the control-channel handshake before it is dropped.",
            &settings::handshake_timeout, std::chrono::milliseconds(100), std::chrono::hours(1)));
        t.push_back(duration_row("idle_timeout", "2m",
                                 "An established control connection with no message for this "
                                 "long is closed.",
                                 &settings::idle_timeout, std::chrono::seconds(1),
                                 std::chrono::hours(24)));
        t.push_back(count_row(
            "provider_max_rate_mbit", "0",
            "When this node provides a test: the most Mbit/s its test flows send at (kernel "
            "pacing). 0 means as the agent asks (its --max-rate, 100 by default); a lower cap of "
            "either end wins. A throttle above the cap cannot be seen by that test.",
            &settings::provider_max_rate_mbit, 0, 100000));
        t.push_back(size_row("storage_map_size", "1GiB",
                             "Initial LMDB map size; it grows on demand.",
                             &settings::storage_map_size, 1ull << 20, 1ull << 40));
        return t;
    }();
    return rows;
}

std::string toml_value(const setting_def& row, const settings& s) {
    std::string v = row.show(s);
    std::uint64_t n = 0;
    if (parse_u64(v, n))
        return v;
    std::string quoted = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\')
            quoted += '\\';
        quoted += c;
    }
    return quoted + "\"";
}

} // namespace

settings settings::defaults() {
    settings s{};
    for (const auto& row : table()) {
        // A default the table cannot parse is a bug in the table: stop rather than run with
        // a setting left at whatever the struct held.
        if (auto st = row.parse(s, row.default_value); !st) {
            std::fprintf(stderr, "glasnode: bad default for %s: %s\n", std::string(row.key).c_str(),
                         st.err().reason.c_str());
            std::abort();
        }
    }
    return s;
}

std::span<const setting_def> setting_table() {
    return table();
}

status apply_setting(settings& s, std::string_view key, std::string_view value) {
    for (const auto& row : table()) {
        if (row.key == key)
            return row.parse(s, value);
    }
    return make_error(errc::invalid_argument, std::string(key) + ": unknown setting");
}

status apply_config_file(settings& s, const std::filesystem::path& file) {
    std::error_code fec;
    if (!std::filesystem::exists(file, fec))
        return make_error(errc::not_found, file.string() + ": no such config file");
    // Debian's toml++ is built with exceptions: parse errors arrive as toml::parse_error.
    toml::table parsed;
    try {
        parsed = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        return make_error(errc::invalid_argument, file.string() + ":" +
                                                      std::to_string(e.source().begin.line) + ": " +
                                                      std::string(e.description()));
    }
    for (const auto& [k, value] : parsed) {
        const std::string key(k.str());
        std::string text;
        if (auto v = value.value_exact<std::string>()) {
            text = *v;
        } else if (auto i = value.value_exact<std::int64_t>()) {
            text = std::to_string(*i);
        } else if (auto b = value.value_exact<bool>()) {
            text = *b ? "true" : "false";
        } else {
            return make_error(errc::invalid_argument,
                              key + ": expected a string or an integer in " + file.string());
        }
        if (auto st = apply_setting(s, key, text); !st) {
            return make_error(errc::invalid_argument,
                              st.err().reason + " (in " + file.string() + ")");
        }
    }
    return {};
}

std::string defaults_as_toml() {
    const settings d = settings::defaults();
    std::ostringstream out;
    out << "# glasnode configuration. Every key is optional; shown at its default.\n";
    for (const auto& row : table()) {
        out << "\n# " << row.comment << "\n";
        if (row.key == "data_dir") {
            out << "# data_dir = \"/var/lib/glasnode\"\n";
            continue;
        }
        out << row.key << " = " << toml_value(row, d) << "\n";
    }
    return out.str();
}

std::string settings_as_markdown() {
    std::ostringstream out;
    out << "# Configuration\n\n"
        << "Generated by `glasnode config --markdown` from the settings table in "
           "`node/settings.cpp`.\n"
        << "Set an entry in a TOML file given with `--config FILE` (`key = value`), or on the "
           "command line with `--set key=value`; the command line wins.\n\n"
        << "| key | default | meaning |\n|---|---|---|\n";
    for (const auto& row : table()) {
        out << "| `" << row.key << "` | `" << row.default_value << "` | " << row.comment << " |\n";
    }
    return out.str();
}

std::filesystem::path default_data_dir() {
    if (const char* d = std::getenv("GLASNODE_DATA_DIR"); d && *d)
        return d;
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
        return std::filesystem::path(x) / "glasnode";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".local/share/glasnode";
    return "glasnode-data";
}

} // namespace glasnode::node
