// glasnode: command-line entry point. Parses the command line into settings (one table,
// node/settings.cpp) and runs one subcommand.

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "node/commands.hpp"
#include "node/settings.hpp"

namespace {

// Options shared by every subcommand, kept as text and validated by the settings table so
// that a bad value gives the same one-line message wherever it comes from.
struct common_options {
    std::string config_file;
    std::vector<std::string> sets;
    std::vector<std::pair<std::string, std::string>> flags; // (setting key, value) from flags
};

void add_setting_flag(CLI::App* app, common_options& opts, const std::string& flag,
                      const std::string& key, const std::string& help) {
    app->add_option_function<std::string>(
        flag, [&opts, key](const std::string& v) { opts.flags.emplace_back(key, v); }, help);
}

void add_common(CLI::App* app, common_options& opts) {
    add_setting_flag(app, opts, "--data-dir", "data_dir", "Data directory (key and database)");
    app->add_option("--config", opts.config_file, "TOML configuration file");
    app->add_option("--set", opts.sets, "Override a setting: --set key=value (repeatable)");
    add_setting_flag(app, opts, "--log-level", "log_level",
                     "trace, debug, info, warn, error or off");
}

// defaults < config file < --set < dedicated flags.
std::optional<glasnode::node::settings> resolve(const common_options& opts) {
    using namespace glasnode;
    node::settings s = node::settings::defaults();
    auto fail = [](const error& e) {
        std::fprintf(stderr, "glasnode: %s\n", e.reason.c_str());
        return std::nullopt;
    };
    if (!opts.config_file.empty()) {
        if (auto st = node::apply_config_file(s, opts.config_file); !st)
            return fail(st.err());
    }
    for (const auto& kv : opts.sets) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos)
            return fail(make_error(errc::invalid_argument, "--set " + kv + ": expected key=value"));
        if (auto st = node::apply_setting(s, kv.substr(0, eq), kv.substr(eq + 1)); !st)
            return fail(st.err());
    }
    for (const auto& [key, value] : opts.flags) {
        if (auto st = node::apply_setting(s, key, value); !st)
            return fail(st.err());
    }
    return s;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"glasnode: a peer-to-peer network-neutrality measurement node.\n"
                 "Finds peers, runs BitTorrent-vs-control differential tests and shares "
                 "signed summaries."};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("glasnode ") + GLASNODE_VERSION);

    common_options opts;

    auto* keygen =
        app.add_subcommand("keygen", "Create the node identity (if absent) and print its id");
    add_common(keygen, opts);

    auto* status =
        app.add_subcommand("status", "Print the node id and the state of the data directory");
    add_common(status, opts);
    bool status_json = false;
    status->add_flag("--json", status_json, "Print one JSON object");

    auto* run = app.add_subcommand("run", "Run the node: control port, test provider, local API");
    add_common(run, opts);
    add_setting_flag(run, opts, "--bind", "bind", "Listen address for control and test ports");
    add_setting_flag(run, opts, "--control-port", "control_port", "Overlay control port");
    add_setting_flag(run, opts, "--bt-port", "bt_port", "BitTorrent-looking test port");
    add_setting_flag(run, opts, "--neutral-port", "neutral_port", "Neutral test port");
    add_setting_flag(
        run, opts, "--provider-max-rate", "provider_max_rate_mbit",
        "Most Mbit/s the test flows this node provides send at (0: as the agent asks)");
    add_setting_flag(run, opts, "--api-port", "api_port", "Local JSON API port");

    auto* config = app.add_subcommand("config", "Print the settings table (defaults, or the "
                                                "effective values with --effective)");
    add_common(config, opts);
    bool config_markdown = false;
    bool config_effective = false;
    config->add_flag("--markdown", config_markdown, "Print the table as Markdown");
    config->add_flag("--effective", config_effective,
                     "Print the values after config file and overrides");

    auto* ping =
        app.add_subcommand("ping", "Open an authenticated control channel to a node and ping it");
    add_common(ping, opts);
    std::string ping_target;
    unsigned ping_count = 3;
    std::string ping_peer_id;
    ping->add_option("target", ping_target, "HOST:CONTROL_PORT")->required();
    ping->add_option("--count", ping_count, "Pings to send")->check(CLI::Range(1u, 1000u));
    ping->add_option("--peer-id", ping_peer_id, "Refuse a peer that is not this node id (hex)");

    glasnode::node::test_request test_req;
    auto add_test_options = [&](CLI::App* cmd) {
        cmd->add_flag("--json", test_req.json, "Print one JSON object instead of a table");
        cmd->add_flag("!--no-confirm", test_req.confirm,
                      "Skip the confirmation rerun of positive or inconclusive comparisons");
        cmd->add_option("--flow-duration", test_req.flow_duration_ms,
                        "Length of each flow, ms (default 2500)")
            ->check(CLI::Range(500u, 30000u));
        cmd->add_option("--repetitions", test_req.repetitions,
                        "Sequential repetitions of each (direction, port, kind)")
            ->check(CLI::Range(1u, 5u));
        cmd->add_option("--pairs", test_req.pairs,
                        "Also run each comparison's BT and control flows together this many "
                        "times (the paired rule judges them from 3 on)")
            ->check(CLI::Range(0u, 5u));
        cmd->add_option("--directions", test_req.directions,
                        "auto (default): run each upload flow beside its download twin (same "
                        "port and kind) once the first control flows showed a quiet path (the "
                        "download's steady, no on/off cross traffic) that is symmetric enough or "
                        "has a narrow uplink (its paired uploads then paced below it), half the "
                        "time; apart: one direction at a time; together: paired from the start "
                        "(wrong on an asymmetric link, where the download's ACKs queue behind the "
                        "upload)")
            ->check(CLI::IsMember({"auto", "apart", "together"}));
        cmd->add_flag("--directions-together", test_req.directions_together,
                      "Same as --directions together");
        cmd->add_option("--max-rate", test_req.max_rate_mbps,
                        "Pace every test flow at no more than this many Mbit/s, both ways "
                        "(default 100; 0: no cap). A throttle above it cannot be seen")
            ->check(CLI::Range(0.0, 100000.0));
        cmd->add_option("--max-test-mb", test_req.max_test_mb,
                        "Bytes a whole test may move, MB, confirmation included (default 0: no "
                        "budget): a rerun that would not fit confirms fewer comparisons, and "
                        "those left unconfirmed are inconclusive")
            ->check(CLI::Range(0.0, 1e6));
        cmd->add_option("--time-budget", test_req.time_budget_s,
                        "Seconds a whole test should take, confirmation included (default 60; "
                        "0: no limit): a rerun that would not fit runs shorter flows, not under "
                        "2 s, and never fewer comparisons")
            ->check(CLI::Range(0.0, 3600.0));
        cmd->add_option("--only-kind", test_req.only_kind,
                        "Run only BitTorrent or only control flows, to see what a classifier "
                        "makes of each (no verdicts)")
            ->check(CLI::IsMember({"bt", "control"}));
        cmd->add_option("--congestion-control", test_req.congestion_control,
                        "TCP congestion control of this end's test flows (e.g. cubic, bbr)");
    };
    auto* test = app.add_subcommand(
        "test", "Run one full differential test (BitTorrent vs control) against a provider");
    add_common(test, opts);
    test->add_option("target", test_req.target, "HOST:CONTROL_PORT of the provider")->required();
    test->add_option("--peer-id", test_req.peer_id, "Refuse a provider that is not this node id");
    add_test_options(test);

    auto* results = app.add_subcommand("results", "List the stored test results, newest first");
    add_common(results, opts);
    std::size_t results_limit = 20;
    bool results_json = false;
    std::string results_id;
    results->add_option("--limit", results_limit, "At most this many (0: all)");
    results->add_flag("--json", results_json, "Print a JSON array of the stored reports");
    results->add_option("--id", results_id, "Only the result whose test id starts with this");

    auto* analyse = app.add_subcommand(
        "analyse", "Judge stored test reports anew (files from test --json or results --json)");
    std::vector<std::string> analyse_files;
    bool analyse_json = false;
    analyse->add_option("files", analyse_files, "Report files")
        ->required()
        ->check(CLI::ExistingFile);
    analyse->add_flag("--json", analyse_json, "Print one JSON object per report, one per line");

    auto* demo = app.add_subcommand(
        "demo", "Local overlay on loopback: a provider node, an agent node, one full test");
    add_common(demo, opts);
    add_test_options(demo);

    auto* sim_cmd = app.add_subcommand(
        "sim", "Simulate one differential test on a modelled path, as a scenario file describes");
    std::string sim_file;
    std::string sim_seed;
    bool sim_json = false;
    sim_cmd->add_option("scenario", sim_file, "Scenario file (TOML; see sim/README.md)")
        ->required();
    auto* sim_seed_option =
        sim_cmd->add_option("--seed", sim_seed, "Master seed of the run (default: the scenario's)");
    sim_cmd->add_flag("--json", sim_json, "Print one JSON object instead of a table");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    auto s = resolve(opts);
    if (!s)
        return 2;

    using namespace glasnode::node;
    if (*keygen)
        return cmd_keygen(*s);
    if (*status)
        return cmd_status(*s, status_json);
    if (*run)
        return cmd_run(*s);
    if (*config)
        return cmd_config(*s, config_markdown, config_effective);
    if (*ping)
        return cmd_ping(*s, ping_target, ping_count, ping_peer_id);
    if (*test)
        return cmd_test(*s, test_req);
    if (*results)
        return cmd_results(*s, results_limit, results_json, results_id);
    if (*analyse)
        return cmd_analyse(analyse_files, analyse_json);
    if (*demo)
        return cmd_demo(*s, test_req);
    if (*sim_cmd)
        return cmd_sim(sim_file,
                       sim_seed_option->count() > 0 ? std::optional<std::string>(sim_seed)
                                                    : std::nullopt,
                       sim_json);
    return 2;
}
