#include "node/commands.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "node/control/connection.hpp"
#include "node/daemon.hpp"
#include "node/diff/agent.hpp"
#include "node/diff/report.hpp"
#include "node/endpoint.hpp"
#include "node/log.hpp"
#include "node/results_store.hpp"
#include "overlay/identity/identity.hpp"
#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"
#include "sim/scenario.hpp"

namespace glasnode::node {
namespace {

int fail(const error& e) {
    std::fprintf(stderr, "glasnode: %s\n", e.reason.c_str());
    return 1;
}

} // namespace

int cmd_keygen(const settings& s) {
    auto existing = overlay::identity::load(s.data_dir);
    if (existing) {
        std::printf("identity already exists in %s\nnode id: %s\n",
                    (s.data_dir / overlay::key_file_name).c_str(),
                    overlay::node_id_string(existing->key()).c_str());
        return 0;
    }
    if (existing.err().code != errc::not_found)
        return fail(existing.err());
    system_random rng;
    auto created = overlay::identity::load_or_create(s.data_dir, rng);
    if (!created)
        return fail(created.err());
    std::printf("created %s (mode 0600)\nnode id: %s\n",
                (s.data_dir / overlay::key_file_name).c_str(),
                overlay::node_id_string(created->key()).c_str());
    return 0;
}

int cmd_status(const settings& s, bool json) {
    auto id = overlay::identity::load(s.data_dir);
    if (!id) {
        if (id.err().code == errc::not_found) {
            std::fprintf(
                stderr, "glasnode: no identity in %s (create one: glasnode keygen --data-dir %s)\n",
                s.data_dir.c_str(), s.data_dir.c_str());
            return 1;
        }
        return fail(id.err());
    }
    const std::string node_id = overlay::node_id_string(id->key());
    if (json) {
        nlohmann::json j{{"node_id", node_id},
                         {"data_dir", s.data_dir.string()},
                         {"key_file", (s.data_dir / overlay::key_file_name).string()}};
        std::cout << j.dump() << "\n";
    } else {
        std::printf("node id:  %s\ndata dir: %s\nkey file: %s\n", node_id.c_str(),
                    s.data_dir.c_str(), (s.data_dir / overlay::key_file_name).c_str());
    }
    return 0;
}

int cmd_config(const settings& s, bool markdown, bool effective) {
    if (markdown) {
        std::cout << settings_as_markdown();
    } else if (effective) {
        for (const auto& row : setting_table())
            std::cout << row.key << " = " << row.show(s) << "\n";
    } else {
        std::cout << defaults_as_toml();
    }
    return 0;
}

int cmd_ping(const settings& s, const std::string& target, unsigned count,
             const std::string& peer_id) {
    auto where = parse_host_port(target);
    if (!where)
        return fail(where.err());
    std::optional<overlay::public_key> expected;
    if (!peer_id.empty()) {
        bytes raw;
        if (!from_hex(peer_id, raw) || raw.size() != 32)
            return fail(make_error(errc::invalid_argument,
                                   "--peer-id: expected 64 hex digits (a node id)"));
        expected.emplace();
        std::copy(raw.begin(), raw.end(), expected->begin());
    }
    init_logging(s.log_level);
    system_random rng;
    auto id = overlay::identity::load_or_create(s.data_dir, rng);
    if (!id)
        return fail(id.err());

    asio::io_context io{1};
    int exit_code = 1;
    auto session = [&]() -> asio::awaitable<void> {
        using clock = std::chrono::steady_clock;
        auto ep = co_await resolve(*where);
        if (!ep) {
            fail(ep.err());
            co_return;
        }
        connection_options options;
        options.handshake_timeout = s.handshake_timeout;
        const auto t0 = clock::now();
        auto conn = co_await dial_control(io.get_executor(), *ep, *id, rng,
                                          expected ? &*expected : nullptr, options);
        if (!conn) {
            fail(make_error(conn.err().code, to_string(*ep) + ": " + conn.err().reason));
            co_return;
        }
        const auto ms = [](clock::duration d) {
            return std::chrono::duration<double, std::milli>(d).count();
        };
        std::printf("connected to %s: peer %s, handshake %.2f ms\n", to_string(*ep).c_str(),
                    overlay::node_id_string((*conn)->peer()).c_str(), ms(clock::now() - t0));
        unsigned answered = 0;
        for (unsigned seq = 1; seq <= count; ++seq) {
            const std::uint64_t nonce = rng.next_u64();
            const auto sent = clock::now();
            if (auto st = co_await (*conn)->send(wire::encode_message(wire::ping{nonce})); !st) {
                fail(st.err());
                break;
            }
            auto reply = co_await (*conn)->receive(s.handshake_timeout);
            if (!reply) {
                fail(reply.err());
                break;
            }
            auto pong = wire::decode_message<wire::pong>(*reply);
            if (!pong || pong->nonce != nonce) {
                fail(make_error(errc::protocol_error, "reply is not the matching pong"));
                break;
            }
            ++answered;
            std::printf("pong seq=%u time=%.3f ms\n", seq, ms(clock::now() - sent));
        }
        (*conn)->close();
        exit_code = answered == count ? 0 : 1;
    };
    asio::co_spawn(io, session(), log_coroutine_failure{"ping"});
    io.run();
    return exit_code;
}

int cmd_run(const settings& s) {
    init_logging(s.log_level);
    system_random rng;
    auto id = overlay::identity::load_or_create(s.data_dir, rng);
    if (!id)
        return fail(id.err());

    daemon d(s, *id);
    if (auto st = d.start(); !st)
        return fail(st.err());

    boost::asio::signal_set signals(d.io(), SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec == asio::error::operation_aborted)
            return; // the set went away first
        if (ec) {
            spdlog::error("waiting for signals failed: {}; stop the node with SIGKILL",
                          ec.message());
            return;
        }
        spdlog::info("received signal {}, shutting down", sig);
        // A second signal takes its default action: the way out if the shutdown ever stalls.
        boost::system::error_code ignored;
        signals.clear(ignored);
        d.stop();
    });
    std::cout << d.ready_line() << std::endl;
    d.io().run();
    d.close();
    spdlog::info("stopped");
    return 0;
}

} // namespace glasnode::node

namespace glasnode::node {
namespace {

result<overlay::public_key> parse_peer_id(const std::string& hex) {
    bytes raw;
    if (!from_hex(hex, raw) || raw.size() != 32)
        return make_error(errc::invalid_argument, "--peer-id: expected 64 hex digits (a node id)");
    overlay::public_key k{};
    std::copy(raw.begin(), raw.end(), k.begin());
    return k;
}

agent_options agent_options_from(const settings& s, const test_request& r) {
    agent_options o;
    o.schedule.flow_duration = std::chrono::milliseconds(r.flow_duration_ms);
    o.schedule.sequential_repetitions = r.repetitions;
    o.schedule.concurrent_repetitions = r.pairs;
    o.schedule.pairing = r.directions_together
                             ? proto::diff::direction_pairing::together
                             : proto::diff::parse_direction_pairing(r.directions)
                                   .value_or(proto::diff::direction_pairing::apart);
    o.schedule.max_rate_bps = static_cast<std::uint64_t>(r.max_rate_mbps * 1e6 + 0.5);
    o.schedule.max_test_bytes = static_cast<std::uint64_t>(r.max_test_mb * 1e6 + 0.5);
    o.schedule.time_budget =
        std::chrono::milliseconds(static_cast<long>(r.time_budget_s * 1e3 + 0.5));
    o.confirm = r.confirm && r.only_kind.empty();
    if (r.only_kind == "bt")
        o.schedule.only_kind = proto::flow_kind::bt;
    if (r.only_kind == "control")
        o.schedule.only_kind = proto::flow_kind::control;
    o.congestion_control = r.congestion_control;
    o.connection.handshake_timeout = s.handshake_timeout;
    o.progress = [](const std::string& line) {
        std::fprintf(stderr, "%s\n", line.c_str());
    };
    return o;
}

// Runs the agent against `provider` on `io` and prints/stores the outcome. SIGINT or SIGTERM
// abandons the test: 128 + the signal's number, as if the signal had ended the process, which
// it would not otherwise do when the shell started us in the background (SIGINT ignored).
int run_and_report(asio::io_context& io, const overlay::identity& id, random_source& rng,
                   results_store& store, tcp::endpoint provider, agent_options o, bool json) {
    std::optional<result<test_report>> outcome;
    int interrupted_by = 0;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec)
            return; // cancelled: the test ended first
        interrupted_by = sig;
        // The provider sees the control connection close and frees the slot; the flows'
        // sockets close with the process.
        io.stop();
    });
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            outcome.emplace(co_await run_diff_test(io.get_executor(), provider, id, rng, o));
            // Flows a failed test abandoned would keep the loop running until their own
            // timeouts; the outcome is known, so stop here.
            io.stop();
        },
        [&](std::exception_ptr e) {
            log_coroutine_failure{"test"}(e);
            boost::system::error_code ignored;
            signals.cancel(ignored); // the only other work: io.run() returns
        });
    io.run();
    if (interrupted_by != 0) {
        std::fprintf(stderr, "glasnode: interrupted by signal %d, test abandoned\n",
                     interrupted_by);
        return 128 + interrupted_by;
    }
    if (!outcome)
        return fail(make_error(errc::closed, "the test did not finish"));
    if (!*outcome)
        return fail(outcome->err());
    const test_report& r = **outcome;
    if (auto st = store.put_durable(to_record(r)); !st)
        std::fprintf(stderr, "glasnode: result not stored: %s\n", st.err().describe().c_str());
    if (json)
        std::cout << to_json(r).dump() << std::endl;
    else
        std::cout << "\n" << to_table(r);
    return 0;
}

} // namespace

int cmd_test(const settings& s, const test_request& request) {
    auto where = parse_host_port(request.target);
    if (!where)
        return fail(where.err());
    agent_options o = agent_options_from(s, request);
    if (!request.peer_id.empty()) {
        auto k = parse_peer_id(request.peer_id);
        if (!k)
            return fail(k.err());
        o.expected_peer = *k;
    }
    init_logging(s.log_level);
    system_random rng;
    auto id = overlay::identity::load_or_create(s.data_dir, rng);
    if (!id)
        return fail(id.err());
    auto store = results_store::open(s.data_dir, s.storage_map_size);
    if (!store)
        return fail(make_error(store.err().code, "database: " + store.err().reason));

    asio::io_context io{1};
    std::optional<result<tcp::endpoint>> ep;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { ep.emplace(co_await resolve(*where)); },
        log_coroutine_failure{"resolve"});
    io.run();
    if (!ep || !*ep)
        return fail(ep ? ep->err() : make_error(errc::not_found, request.target));
    io.restart();
    return run_and_report(io, *id, rng, **store, **ep, std::move(o), request.json);
}

int cmd_results(const settings& s, std::size_t limit, bool json, const std::string& test_id) {
    auto store = results_store::open(s.data_dir, s.storage_map_size);
    if (!store)
        return fail(make_error(store.err().code, "database: " + store.err().reason));
    std::vector<test_record> records;
    if (!test_id.empty()) {
        auto r = (*store)->find(test_id);
        if (!r)
            return fail(r.err());
        records.push_back(std::move(*r));
    } else {
        auto all = (*store)->list(limit);
        if (!all)
            return fail(all.err());
        records = std::move(*all);
    }
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : records) {
            auto j = nlohmann::json::parse(r.report_json, nullptr, false);
            out.push_back(j.is_discarded() ? nlohmann::json{{"test_id", r.test_id}} : j);
        }
        std::cout << out.dump() << std::endl;
        return 0;
    }
    if (records.empty()) {
        std::printf("no results yet in %s (run: glasnode test HOST:PORT)\n", s.data_dir.c_str());
        return 0;
    }
    for (const auto& r : records)
        std::cout << to_table(r) << "\n";
    return 0;
}

int cmd_analyse(const std::vector<std::string>& files, bool json) {
    // A report of max_flows flows of a few thousand samples each is a few MiB of JSON.
    constexpr std::uintmax_t max_file_bytes = 256u << 20;
    int rc = 0;
    auto complain = [&](const std::string& file, const std::string& what) {
        std::fprintf(stderr, "glasnode: %s: %s\n", file.c_str(), what.c_str());
        rc = 1;
    };
    for (const std::string& file : files) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(file, ec);
        if (ec) {
            complain(file, ec.message());
            continue;
        }
        if (size > max_file_bytes) {
            complain(file, fmt::format("{} bytes, more than the {} a report can be", size,
                                       max_file_bytes));
            continue;
        }
        std::ifstream in(file, std::ios::binary);
        auto doc = nlohmann::json::parse(in, nullptr, false);
        if (doc.is_discarded()) {
            complain(file, "not JSON");
            continue;
        }
        if (!doc.is_array())
            doc = nlohmann::json::array({std::move(doc)});
        for (const auto& one : doc) {
            auto report = report_from_json(one);
            if (report) {
                if (auto st = proto::diff::analyse_runs(*report); !st)
                    report = st.err();
            }
            if (!report) {
                complain(file, report.err().describe());
                continue;
            }
            if (json)
                std::cout << to_json(*report).dump() << std::endl;
            else
                std::cout << to_table(*report) << "\n";
        }
    }
    return rc;
}

int cmd_demo(const settings& s, const test_request& request) {
    init_logging(s.log_level == "info" ? "warn" : s.log_level);
    system_random rng;
    // Two nodes with their own identities and databases under <data_dir>/demo.
    settings provider_settings = s;
    provider_settings.data_dir = s.data_dir / "demo" / "provider";
    provider_settings.bind_address = "127.0.0.1";
    provider_settings.control_port = 0;
    provider_settings.bt_port = 0;
    provider_settings.neutral_port = 0;
    settings agent_settings = s;
    agent_settings.data_dir = s.data_dir / "demo" / "agent";

    auto provider_id = overlay::identity::load_or_create(provider_settings.data_dir, rng);
    if (!provider_id)
        return fail(provider_id.err());
    auto agent_id = overlay::identity::load_or_create(agent_settings.data_dir, rng);
    if (!agent_id)
        return fail(agent_id.err());
    auto store = results_store::open(agent_settings.data_dir, s.storage_map_size);
    if (!store)
        return fail(make_error(store.err().code, "database: " + store.err().reason));

    daemon provider(provider_settings, *provider_id);
    if (auto st = provider.start(); !st)
        return fail(st.err());
    std::printf("glasnode demo: a local overlay on loopback\n");
    std::printf("  provider node %s\n  %s\n", overlay::node_id_string(provider_id->key()).c_str(),
                provider.ready_line().c_str());
    std::printf("  agent node    %s\n", overlay::node_id_string(agent_id->key()).c_str());
    std::printf("  data in %s\n\n", (s.data_dir / "demo").c_str());
    std::fflush(stdout);
    std::thread provider_thread([&] { provider.io().run(); });

    tcp::endpoint target = provider.control_endpoint();
    agent_options o = agent_options_from(s, request);
    o.expected_peer = provider_id->key();
    asio::io_context io{1};
    const int rc = run_and_report(io, *agent_id, rng, **store, target, std::move(o), request.json);
    asio::post(provider.io(), [&] { provider.stop(); });
    provider_thread.join();
    if (rc == 0 && !request.json)
        std::printf("\nstored in %s; list with: glasnode results --data-dir %s\n",
                    (agent_settings.data_dir / "db").c_str(), agent_settings.data_dir.c_str());
    return rc;
}

namespace {

nlohmann::json expectation_json(const sim::expectation_check& c) {
    nlohmann::json j{{"direction", proto::to_string(c.expected.dir)},
                     {"port", proto::to_string(c.expected.port)},
                     {"verdict", proto::to_string(c.expected.outcome)},
                     {"met", c.met}};
    if (c.expected.why)
        j["basis"] = proto::to_string(*c.expected.why);
    j["actual"] = c.actual ? nlohmann::json(proto::to_string(*c.actual)) : nlohmann::json();
    j["actual_basis"] =
        c.actual_basis ? nlohmann::json(proto::to_string(*c.actual_basis)) : nlohmann::json();
    return j;
}

} // namespace

int cmd_sim(const std::string& file, const std::optional<std::string>& seed_text, bool json) {
    auto sc = sim::load_scenario(file);
    if (!sc) {
        std::fprintf(stderr, "glasnode: %s\n", sc.err().reason.c_str());
        return 2;
    }
    std::uint64_t seed = sc->seed;
    if (seed_text) {
        const char* end = seed_text->data() + seed_text->size();
        const auto [ptr, ec] = std::from_chars(seed_text->data(), end, seed);
        if (ec != std::errc{} || ptr != end || seed_text->empty()) {
            std::fprintf(stderr, "glasnode: --seed: expected an unsigned 64-bit integer\n");
            return 2;
        }
    }
    auto run = sim::run_diff_test(sim::harness_for(*sc, seed));
    if (!run)
        return fail(run.err());

    // The agent's view of the test, as `glasnode test` reports it; the peer is the simulator.
    test_report r;
    if (run->data)
        static_cast<proto::diff::test_data&>(r) = *run->data;
    r.test_id = sc->name;
    r.role = "agent";
    r.peer_id = "sim";
    r.peer_address = "virtual";
    r.duration_s = std::chrono::duration<double>(run->agent_finished_at).count();
    const std::string hash = fmt::format("{:016x}", run->trace_hash);
    const auto checks = sim::check_expectations(*sc, r.analysis);
    const bool all_met = std::all_of(checks.begin(), checks.end(),
                                     [](const sim::expectation_check& c) { return c.met; });

    if (json) {
        nlohmann::json expect = nlohmann::json::array();
        for (const auto& c : checks)
            expect.push_back(expectation_json(c));
        nlohmann::json j{{"scenario", sc->name},
                         {"policy", sc->policy_kind},
                         {"seed", seed},
                         {"trace_hash", hash},
                         {"sim_duration_s", r.duration_s},
                         {"events", run->events},
                         {"outcome", run->data ? "done" : "failed"},
                         {"verdicts", to_json(r)["verdicts"]},
                         {"expect", std::move(expect)},
                         {"expectations_met", all_met}};
        if (run->failure)
            j["error"] = run->failure->describe();
        std::cout << j.dump() << std::endl;
        return 0;
    }
    std::cout << fmt::format("scenario {} (policy {}): {}\n", sc->name, sc->policy_kind,
                             sc->description);
    if (run->data)
        std::cout << to_table(r);
    else
        std::cout << "the simulated test failed: " << run->failure->describe() << "\n";
    for (const auto& c : checks) {
        std::cout << fmt::format(
            "  expected {}/{} {}{}: {}\n", proto::to_string(c.expected.dir),
            proto::to_string(c.expected.port), proto::to_string(c.expected.outcome),
            c.expected.why ? fmt::format(" ({})", proto::to_string(*c.expected.why)) : "",
            c.met ? "met" : "NOT met");
    }
    std::cout << fmt::format("simulated {:.1f} s, {} events\nseed: {}\ntrace hash: {}\n",
                             r.duration_s, run->events, seed, hash);
    return 0;
}

} // namespace glasnode::node
