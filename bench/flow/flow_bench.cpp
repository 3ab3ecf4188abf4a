// One real flow over 127.0.0.1 between two threads, each with its own io_context: the provider's
// test port in one, the agent in the other, as two nodes would run it. Prints the receiver's
// throughput so that it can be set beside iperf3's (bench/flow/flow_vs_iperf3.sh).
//
//   glasnode_flow_bench [--kind bt|control] [--direction download|upload] [--duration-ms N]
//                       [--runs N] [--cc NAME]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "node/flow/flow.hpp"
#include "node/flow/test_port_listener.hpp"

namespace {

namespace asio = boost::asio;
namespace diff = glasnode::proto::diff;
using namespace glasnode::node;

struct options {
    diff::flow_kind kind = diff::flow_kind::bt;
    bool download = true; // agent leeches
    std::chrono::milliseconds duration{5000};
    int runs = 1;
    std::string cc;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: glasnode_flow_bench [--kind bt|control] "
                 "[--direction download|upload] [--duration-ms N] [--runs N] [--cc NAME]\n");
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc)
            usage();
        const std::string_view v = argv[++i];
        if (a == "--kind" && (v == "bt" || v == "control"))
            o.kind = v == "bt" ? diff::flow_kind::bt : diff::flow_kind::control;
        else if (a == "--direction" && (v == "download" || v == "upload"))
            o.download = v == "download";
        else if (a == "--duration-ms")
            o.duration = std::chrono::milliseconds(std::clamp(std::atol(v.data()), 100L, 600'000L));
        else if (a == "--runs")
            o.runs = std::clamp(std::atoi(v.data()), 1, 1000);
        else if (a == "--cc")
            o.cc = v;
        else
            usage();
    }
    return o;
}

flow_params params_for(const options& o, flow_role role, std::uint64_t seed) {
    flow_params p;
    p.kind = o.kind;
    p.role = role;
    p.info_hash =
        diff::info_hash_of_token(glasnode::as_bytes("bench-token-" + std::to_string(seed)));
    p.duration = o.duration;
    p.congestion_control = o.cc;
    p.seed = seed;
    return p;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    const flow_role agent_role = o.download ? flow_role::leech : flow_role::seed;
    const flow_role provider_role = o.download ? flow_role::seed : flow_role::leech;

    asio::io_context provider_ioc;
    auto work = asio::make_work_guard(provider_ioc);
    std::optional<flow_params> live; // set by the agent thread through a post, read by the provider
    std::promise<flow_report>* waiting = nullptr; // provider thread only
    std::unique_ptr<test_port_listener> listener;
    test_port_config cfg;
    cfg.bind = {asio::ip::make_address("127.0.0.1"), 0};
    auto opened = test_port_listener::open(
        provider_ioc.get_executor(), cfg,
        [&](const flow_request& r) -> std::optional<flow_params> {
            if (!live || live->info_hash != r.info_hash)
                return std::nullopt;
            return std::exchange(live, std::nullopt); // one flow per token
        },
        [&](const flow_report& r) {
            if (waiting)
                std::exchange(waiting, nullptr)->set_value(r);
        });
    if (!opened) {
        std::fprintf(stderr, "%s\n", opened.err().describe().c_str());
        return 1;
    }
    listener = std::move(*opened);
    const auto endpoint = listener->local_endpoint();
    std::thread provider_thread([&] { provider_ioc.run(); });

    int failures = 0;
    for (int run = 0; run < o.runs; ++run) {
        const std::uint64_t seed = 1000 + static_cast<std::uint64_t>(run);
        auto provider_params = params_for(o, provider_role, seed * 2);
        provider_params.info_hash = params_for(o, agent_role, seed).info_hash;
        // Hand the token to the provider's thread and wait until it holds it.
        std::promise<flow_report> provider_promise;
        auto provider_done = provider_promise.get_future();
        std::promise<void> armed;
        asio::post(provider_ioc, [&] {
            live = provider_params;
            waiting = &provider_promise;
            armed.set_value();
        });
        armed.get_future().wait();

        asio::io_context agent_ioc;
        flow_report a;
        asio::co_spawn(
            agent_ioc,
            run_agent_flow(agent_ioc.get_executor(), endpoint, params_for(o, agent_role, seed)),
            [&](std::exception_ptr, flow_report r) { a = std::move(r); });
        agent_ioc.run();

        // The provider reports on its own thread once its side has closed.
        std::optional<flow_report> prov;
        if (provider_done.wait_for(std::chrono::seconds(30)) == std::future_status::ready)
            prov = provider_done.get();

        const flow_report& leecher = o.download ? a : (prov ? *prov : a);
        const double secs = std::chrono::duration<double>(leecher.duration).count();
        const double gbit =
            secs > 0 ? static_cast<double>(leecher.window_bytes) * 8 / secs / 1e9 : 0;
        const bool ok = a.end == flow_end::completed && prov && prov->end == flow_end::completed;
        failures += !ok;
        std::printf("flow run=%d kind=%s direction=%s duration_s=%.3f gbit_s=%.2f samples=%zu "
                    "interval_ms=%.1f agent_end=%s provider_end=%s resets=%u/%u cc=%s\n",
                    run, std::string{glasnode::proto::to_string(o.kind)}.c_str(),
                    o.download ? "download" : "upload", secs, gbit, leecher.samples.size(),
                    std::chrono::duration<double, std::milli>(leecher.sample_interval).count(),
                    std::string{to_string(a.end)}.c_str(),
                    prov ? std::string{to_string(prov->end)}.c_str() : "missing",
                    a.resets_received + (prov ? prov->resets_received : 0),
                    a.resets_sent + (prov ? prov->resets_sent : 0),
                    leecher.congestion_control.c_str());
        std::fflush(stdout);
    }

    asio::post(provider_ioc, [&] {
        listener.reset();
        work.reset();
        provider_ioc.stop();
    });
    provider_thread.join();
    return failures == 0 ? 0 : 1;
}
