#include <algorithm>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "node/settings.hpp"

namespace glasnode::node {
namespace {

TEST(settings, defaults_come_from_the_table) {
    const settings s = settings::defaults();
    EXPECT_EQ(s.control_port, 9773);
    EXPECT_EQ(s.bt_port, 6881);
    EXPECT_EQ(s.neutral_port, 9775);
    EXPECT_EQ(s.api_port, 9774);
    EXPECT_EQ(s.api_address, "127.0.0.1");
    EXPECT_EQ(s.handshake_timeout, std::chrono::seconds(5));
    EXPECT_EQ(s.storage_map_size, 1ull << 30);
    EXPECT_EQ(s.provider_max_rate_mbit, 0u);
    for (const auto& row : setting_table()) {
        EXPECT_FALSE(row.comment.empty()) << row.key;
        if (row.key != "data_dir") {
            EXPECT_EQ(row.show(s), row.default_value) << row.key;
        }
    }
}

TEST(settings, bad_values_name_the_key_in_one_line) {
    settings s = settings::defaults();
    struct bad_case {
        const char* key;
        const char* value;
    };
    for (auto [key, value] :
         {bad_case{"control_port", "-1"}, bad_case{"control_port", "65536"},
          bad_case{"bt_port", "http"}, bad_case{"bind", "example.org"},
          bad_case{"log_level", "loud"}, bad_case{"handshake_timeout", "5x"},
          bad_case{"handshake_timeout", "1ms"}, bad_case{"storage_map_size", "12QB"},
          bad_case{"max_control_connections", "-1"}}) {
        auto st = apply_setting(s, key, value);
        ASSERT_FALSE(st) << key << "=" << value;
        EXPECT_EQ(st.err().code, errc::invalid_argument);
        EXPECT_EQ(st.err().reason.rfind(std::string(key) + ": ", 0), 0u) << st.err().reason;
        EXPECT_EQ(st.err().reason.find('\n'), std::string::npos);
    }
    auto unknown = apply_setting(s, "colour", "blue");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.err().reason, "colour: unknown setting");
}

TEST(settings, units_parse) {
    settings s = settings::defaults();
    ASSERT_TRUE(apply_setting(s, "idle_timeout", "90s"));
    EXPECT_EQ(s.idle_timeout, std::chrono::seconds(90));
    ASSERT_TRUE(apply_setting(s, "handshake_timeout", "250ms"));
    EXPECT_EQ(s.handshake_timeout, std::chrono::milliseconds(250));
    ASSERT_TRUE(apply_setting(s, "idle_timeout", "2m"));
    EXPECT_EQ(s.idle_timeout, std::chrono::minutes(2));
    ASSERT_TRUE(apply_setting(s, "storage_map_size", "64MiB"));
    EXPECT_EQ(s.storage_map_size, 64ull << 20);
    ASSERT_TRUE(apply_setting(s, "bind", "::1"));
    EXPECT_EQ(s.bind_address, "::1");
    ASSERT_TRUE(apply_setting(s, "provider_max_rate_mbit", "20"));
    EXPECT_EQ(s.provider_max_rate_mbit, 20u);
    EXPECT_FALSE(apply_setting(s, "provider_max_rate_mbit", "-3"));
}

class config_file : public ::testing::Test {
protected:
    void SetUp() override {
        m_path = std::filesystem::path(::testing::TempDir()) /
                 ("glasnode-settings-" + std::to_string(::getpid()) + ".toml");
    }
    void TearDown() override { std::filesystem::remove(m_path); }
    void write(const std::string& text) { std::ofstream(m_path) << text; }
    std::filesystem::path m_path;
};

TEST_F(config_file, applies_every_key) {
    write("control_port = 10001\nbind = \"127.0.0.1\"\nidle_timeout = \"30s\"\n");
    settings s = settings::defaults();
    ASSERT_TRUE(apply_config_file(s, m_path));
    EXPECT_EQ(s.control_port, 10001);
    EXPECT_EQ(s.bind_address, "127.0.0.1");
    EXPECT_EQ(s.idle_timeout, std::chrono::seconds(30));
}

TEST_F(config_file, bad_value_names_key_and_file) {
    write("control_port = 70000\n");
    settings s = settings::defaults();
    auto st = apply_config_file(s, m_path);
    ASSERT_FALSE(st);
    EXPECT_NE(st.err().reason.find("control_port: expected a port number"), std::string::npos);
    EXPECT_NE(st.err().reason.find(m_path.string()), std::string::npos);
}

TEST_F(config_file, unknown_key_and_syntax_error_are_errors) {
    write("colour = \"blue\"\n");
    settings s = settings::defaults();
    auto unknown = apply_config_file(s, m_path);
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.err().reason.find("colour: unknown setting"), std::string::npos);

    write("control_port = = 3\n");
    auto syntax = apply_config_file(s, m_path);
    ASSERT_FALSE(syntax);
    EXPECT_NE(syntax.err().reason.find(m_path.string() + ":1"), std::string::npos);
}

// A value other than the default for every key, as a config file writes it, with the text
// show() prints for it. Every key of the table must have one, so that a new setting is covered.
struct non_default {
    const char* key;
    const char* toml; // right-hand side in the config file
    const char* shown;
};

constexpr non_default non_defaults[] = {
    {"data_dir", "\"/srv/glasnode-test\"", "/srv/glasnode-test"},
    {"bind", "\"::1\"", "::1"},
    {"control_port", "10001", "10001"},
    {"bt_port", "16881", "16881"},
    {"neutral_port", "19775", "19775"},
    {"api_address", "\"127.0.0.2\"", "127.0.0.2"},
    {"api_port", "19774", "19774"},
    {"log_level", "\"debug\"", "debug"},
    {"max_control_connections", "7", "7"},
    {"max_frame_bytes", "65536", "65536"},
    {"handshake_timeout", "\"750ms\"", "750ms"},
    {"idle_timeout", "\"90s\"", "90s"},
    {"provider_max_rate_mbit", "20", "20"},
    {"storage_map_size", "\"64MiB\"", "64MiB"},
};

std::string non_default_file() {
    std::string text = "# every key away from its default\n";
    for (const auto& v : non_defaults) {
        text += std::string(v.key) + " = " + v.toml + "\n";
    }
    return text;
}

TEST(settings, every_key_has_a_non_default_case) {
    ASSERT_EQ(std::size(non_defaults), setting_table().size());
    const settings d = settings::defaults();
    for (const auto& row : setting_table()) {
        const auto it = std::find_if(std::begin(non_defaults), std::end(non_defaults),
                                     [&](const non_default& v) { return v.key == row.key; });
        ASSERT_NE(it, std::end(non_defaults)) << row.key;
        EXPECT_NE(row.show(d), it->shown) << row.key << " case is its default";
    }
}

TEST_F(config_file, non_default_values_arrive_in_every_field) {
    write(non_default_file());
    settings s = settings::defaults();
    ASSERT_TRUE(apply_config_file(s, m_path));
    // Checked on the typed fields, not through show(): a parser that stored its value in the
    // wrong field, or a show() that hid it, would pass a text comparison.
    EXPECT_EQ(s.data_dir, std::filesystem::path("/srv/glasnode-test"));
    EXPECT_EQ(s.bind_address, "::1");
    EXPECT_EQ(s.control_port, 10001);
    EXPECT_EQ(s.bt_port, 16881);
    EXPECT_EQ(s.neutral_port, 19775);
    EXPECT_EQ(s.api_address, "127.0.0.2");
    EXPECT_EQ(s.api_port, 19774);
    EXPECT_EQ(s.log_level, "debug");
    EXPECT_EQ(s.max_control_connections, 7u);
    EXPECT_EQ(s.max_frame_bytes, 65536u);
    EXPECT_EQ(s.handshake_timeout, std::chrono::milliseconds(750));
    EXPECT_EQ(s.idle_timeout, std::chrono::seconds(90));
    EXPECT_EQ(s.storage_map_size, 64ull << 20);
    EXPECT_EQ(s.provider_max_rate_mbit, 20u);
    for (const auto& v : non_defaults) {
        const auto row = std::find_if(setting_table().begin(), setting_table().end(),
                                      [&](const setting_def& r) { return r.key == v.key; });
        ASSERT_NE(row, setting_table().end()) << v.key;
        EXPECT_EQ(row->show(s), v.shown) << v.key;
    }
}

TEST_F(config_file, printed_values_read_back_to_the_same_settings) {
    write(non_default_file());
    settings s = settings::defaults();
    ASSERT_TRUE(apply_config_file(s, m_path));
    // What `glasnode config --effective` prints for each key, given back one key at a time
    // (as --set key=value does), must rebuild the same settings from the defaults.
    settings again = settings::defaults();
    for (const auto& row : setting_table()) {
        ASSERT_TRUE(apply_setting(again, row.key, row.show(s))) << row.key << " = " << row.show(s);
    }
    for (const auto& row : setting_table()) {
        EXPECT_EQ(row.show(again), row.show(s)) << row.key;
    }
    EXPECT_EQ(again.handshake_timeout, s.handshake_timeout);
    EXPECT_EQ(again.storage_map_size, s.storage_map_size);
}

TEST_F(config_file, printed_defaults_file_restores_every_default) {
    // Start away from every default, so that a key the printed file left out or printed with
    // another value shows.
    write(non_default_file());
    settings s = settings::defaults();
    ASSERT_TRUE(apply_config_file(s, m_path));
    write(defaults_as_toml());
    ASSERT_TRUE(apply_config_file(s, m_path));
    const settings d = settings::defaults();
    for (const auto& row : setting_table()) {
        if (row.key == "data_dir") {
            // Printed commented out: its default depends on the environment.
            EXPECT_EQ(row.show(s), "/srv/glasnode-test");
            continue;
        }
        EXPECT_EQ(row.show(s), row.default_value) << row.key;
        EXPECT_EQ(row.show(s), row.show(d)) << row.key;
    }
}

TEST(settings, markdown_lists_every_key) {
    const std::string md = settings_as_markdown();
    for (const auto& row : setting_table()) {
        EXPECT_NE(md.find("| `" + std::string(row.key) + "` |"), std::string::npos) << row.key;
    }
}

} // namespace
} // namespace glasnode::node
