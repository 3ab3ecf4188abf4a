// libFuzzer target for the report reader behind `glasnode analyse` (node/diff/report.hpp):
// arbitrary bytes parsed as JSON without exceptions, as cmd_analyse does, then each report of
// the document read with report_from_json and taken through what the command does next.
//
// Every input must be either refused with errc::invalid_argument or errc::limit_exceeded (and
// a reason), or read within the documented bounds; a read report must analyse (unless it holds
// no run at all), print, and come back from its own JSON with the same flows and, when every
// interval survived the printing exactly, the same verdicts. No exception may escape: the
// command catches none. Any violation aborts.
#include "node/diff/report.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

using namespace glasnode;
using namespace glasnode::node;

namespace {

void require(bool condition) {
    if (!condition)
        std::abort();
}

void check_bounds(const test_report& r) {
    // "run" is at most 8; every run holds flows of at most max_flows in all.
    require(r.runs.size() <= 9);
    std::size_t flows = 0;
    for (const auto& run : r.runs) {
        flows += run.size();
        for (const auto& f : run) {
            require(f.receiver().samples.size() <= proto::max_samples_per_flow);
            require(f.agent.index == f.spec.index && f.provider.index == f.spec.index);
            require(f.agent.role != f.provider.role);
        }
    }
    require(flows <= proto::max_flows);
    // One list of confirmed comparisons per rerun.
    require(r.confirmed_keys.size() + 1 == std::max<std::size_t>(r.runs.size(), 1));
    for (const auto& keys : r.confirmed_keys)
        require(keys.size() <= 4);
}

bool same_flow(const measured_flow& a, const measured_flow& b) {
    const auto& ra = a.receiver();
    const auto& rb = b.receiver();
    return a.spec.index == b.spec.index && a.spec.dir == b.spec.dir && a.spec.port == b.spec.port &&
           a.spec.kind == b.spec.kind && a.spec.group == b.spec.group &&
           a.repetition == b.repetition && a.concurrent == b.concurrent &&
           a.agent.end == b.agent.end && a.provider.end == b.provider.end &&
           a.agent.resets_sent == b.agent.resets_sent &&
           a.agent.resets_received == b.agent.resets_received &&
           a.provider.resets_sent == b.provider.resets_sent &&
           a.provider.resets_received == b.provider.resets_received && ra.samples == rb.samples &&
           ra.duration_us == rb.duration_us;
}

bool same_verdicts(const proto::test_analysis& a, const proto::test_analysis& b) {
    if (a.verdicts.size() != b.verdicts.size())
        return false;
    for (std::size_t i = 0; i < a.verdicts.size(); ++i) {
        const auto& x = a.verdicts[i];
        const auto& y = b.verdicts[i];
        if (x.dir != y.dir || x.port != y.port || x.outcome != y.outcome || x.why != y.why ||
            x.confirmed != y.confirmed || x.runs != y.runs)
            return false;
    }
    return true;
}

// One document of the file, as cmd_analyse takes it.
void check_one(const nlohmann::json& doc) {
    auto report = report_from_json(doc);
    if (!report) {
        const errc code = report.err().code;
        require(code == errc::invalid_argument || code == errc::limit_exceeded);
        require(!report.err().reason.empty());
        return;
    }
    check_bounds(*report);

    // The reader validated everything the analysis refuses: only an empty report cannot be
    // judged.
    const status analysed = proto::diff::analyse_runs(*report);
    if (!analysed) {
        require(report->runs.empty() && analysed.err().code == errc::invalid_argument);
        return;
    }
    require(report->run_analyses.size() == report->runs.size());
    (void)to_table(*report);
    (void)to_table(to_record(*report));

    // What glasnode prints, glasnode reads back.
    const nlohmann::json printed = to_json(*report);
    const std::string text = printed.dump();
    auto again = report_from_json(nlohmann::json::parse(text, nullptr, false));
    require(again.ok());
    require(again->runs.size() == report->runs.size());
    bool intervals_exact = true;
    for (std::size_t run = 0; run < report->runs.size(); ++run) {
        require(again->runs[run].size() == report->runs[run].size());
        for (std::size_t i = 0; i < report->runs[run].size(); ++i) {
            const auto& a = report->runs[run][i];
            const auto& b = again->runs[run][i];
            require(same_flow(a, b));
            intervals_exact &= a.receiver().sample_interval_us == b.receiver().sample_interval_us;
        }
    }
    require(again->confirmed_keys.size() == report->confirmed_keys.size());
    for (std::size_t i = 0; i < report->confirmed_keys.size(); ++i) {
        require(again->confirmed_keys[i].size() == report->confirmed_keys[i].size());
        for (std::size_t k = 0; k < report->confirmed_keys[i].size(); ++k)
            require(again->confirmed_keys[i][k].dir == report->confirmed_keys[i][k].dir &&
                    again->confirmed_keys[i][k].port == report->confirmed_keys[i][k].port);
    }
    require(again->pooled.size() == report->pooled.size());
    for (std::size_t i = 0; i < report->pooled.size(); ++i)
        require(again->pooled[i].pooled.dir == report->pooled[i].pooled.dir &&
                again->pooled[i].pooled.port == report->pooled[i].pooled.port &&
                again->pooled[i].by.dir == report->pooled[i].by.dir &&
                again->pooled[i].by.port == report->pooled[i].by.port);
    require(proto::diff::analyse_runs(*again).ok());
    // Intervals are printed in milliseconds to 4 decimals: beyond 2^53 / 10 us a value may
    // not survive, and then the samples' rates differ. Otherwise the analysis saw the same
    // inputs and must say the same.
    if (intervals_exact)
        require(same_verdicts(again->analysis, report->analysis));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto doc = nlohmann::json::parse(data, data + size, nullptr, false);
    if (doc.is_discarded())
        return 0;
    // A file holds one report or an array of them (`glasnode results --json`).
    if (!doc.is_array()) {
        check_one(doc);
        return 0;
    }
    for (const auto& one : doc)
        check_one(one);
    return 0;
}
