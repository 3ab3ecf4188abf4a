// Simulated differential tests per second on one core: a whole test of the real agent and
// provider cores (negotiation, 16 flows, collect, the real analysis and, where the first run
// accuses, the confirmation rerun) on the simulator's modelled path. Each iteration runs one test
// under a fresh seed, so the figures include the flow model's integration and every message's
// encoding and decoding.
#include <benchmark/benchmark.h>
#include <cstdint>
#include <cstdlib>

#include "sim/diff_harness.hpp"
#include "sim/scenario.hpp"

namespace {

using namespace glasnode;

// The shipped scenario files, read once.
const sim::scenario& scenario_named(const char* name) {
    static const auto load = [](const char* n) {
        auto s = sim::load_scenario(std::string(GLASNODE_SIM_SCENARIOS) + "/" + n + ".toml");
        if (!s)
            std::abort();
        return *s;
    };
    static const sim::scenario neutral = load("neutral");
    static const sim::scenario throttled = load("content_throttle");
    return std::string_view(name) == "neutral" ? neutral : throttled;
}

void run_tests(benchmark::State& state, const sim::scenario& s) {
    std::uint64_t seed = 1;
    std::uint64_t flows = 0;
    double virtual_s = 0;
    for (auto _ : state) {
        auto r = sim::run_diff_test(sim::harness_for(s, seed++));
        if (!r || !r->data) {
            state.SkipWithError("the simulated test did not complete");
            return;
        }
        for (const auto& run : r->data->runs)
            flows += run.size();
        virtual_s += std::chrono::duration<double>(r->agent_finished_at).count();
        benchmark::DoNotOptimize(r->trace_hash);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["flows_per_test"] =
        benchmark::Counter(static_cast<double>(flows) / static_cast<double>(state.iterations()));
    state.counters["virtual_s_per_test"] =
        benchmark::Counter(virtual_s / static_cast<double>(state.iterations()));
}

// 16 flows, one run: nothing to confirm.
void BM_sim_test_neutral(benchmark::State& state) {
    run_tests(state, scenario_named("neutral"));
}
BENCHMARK(BM_sim_test_neutral)->Unit(benchmark::kMillisecond);

// 16 flows and a 16-flow confirmation rerun.
void BM_sim_test_content_throttle(benchmark::State& state) {
    run_tests(state, scenario_named("content_throttle"));
}
BENCHMARK(BM_sim_test_content_throttle)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
