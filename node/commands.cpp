#include "node/commands.hpp"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>

#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "node/control/connection.hpp"
#include "node/daemon.hpp"
#include "node/endpoint.hpp"
#include "node/log.hpp"
#include "overlay/identity/identity.hpp"
#include "overlay/identity/random.hpp"
#include "overlay/wire/core_messages.hpp"

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
    if (existing.err().code != errc::not_found) return fail(existing.err());
    system_random rng;
    auto created = overlay::identity::load_or_create(s.data_dir, rng);
    if (!created) return fail(created.err());
    std::printf("created %s (mode 0600)\nnode id: %s\n",
                (s.data_dir / overlay::key_file_name).c_str(),
                overlay::node_id_string(created->key()).c_str());
    return 0;
}

int cmd_status(const settings& s, bool json) {
    auto id = overlay::identity::load(s.data_dir);
    if (!id) {
        if (id.err().code == errc::not_found) {
            std::fprintf(stderr, "glasnode: no identity in %s (create one: glasnode keygen --data-dir %s)\n",
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
        for (const auto& row : setting_table()) std::cout << row.key << " = " << row.show(s) << "\n";
    } else {
        std::cout << defaults_as_toml();
    }
    return 0;
}

int cmd_ping(const settings& s, const std::string& target, unsigned count,
             const std::string& peer_id) {
    auto where = parse_host_port(target);
    if (!where) return fail(where.err());
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
    if (!id) return fail(id.err());

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
    if (!id) return fail(id.err());

    daemon d(s, *id);
    if (auto st = d.start(); !st) return fail(st.err());

    boost::asio::signal_set signals(d.io(), SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("received signal {}, shutting down", sig);
        d.stop();
    });
    std::cout << d.ready_line() << std::endl;
    d.io().run();
    spdlog::info("stopped");
    return 0;
}

} // namespace glasnode::node
