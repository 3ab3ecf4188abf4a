// A stored report read back (report_from_json) gives the analysis the same flow records as the
// test that wrote it, so `glasnode analyse` judges exactly what was measured; malformed or
// oversized reports are refused with the field named.

#include <functional>

#include <gtest/gtest.h>

#include "node/diff/report.hpp"

namespace glasnode::node {
namespace {

namespace nego = proto::diff;

measured_flow make_flow(std::uint16_t index, proto::direction dir, proto::test_port port,
                        proto::flow_kind kind, std::uint16_t group, bool concurrent,
                        std::uint64_t bytes_per_interval) {
    measured_flow f;
    f.spec = {index, dir, port, kind, group, 3000};
    f.concurrent = concurrent;
    f.agent.index = f.provider.index = index;
    f.agent.role = proto::agent_role(dir);
    f.provider.role = proto::provider_role(dir);
    f.agent.end = f.provider.end = proto::flow_end::completed;
    nego::flow_measurement& rx = dir == proto::direction::download ? f.agent : f.provider;
    rx.sample_interval_us = 30'000;
    for (std::uint64_t k = 0; k < 100; ++k)
        rx.samples.push_back(bytes_per_interval + 97 * (k % 7));
    rx.duration_us = 3'000'000;
    f.agent.resets_received = index % 3;
    f.provider.resets_sent = index % 2;
    return f;
}

test_report sample_report() {
    using proto::direction;
    using proto::flow_kind;
    using proto::test_port;
    test_report r;
    r.test_id = "0011223344556677";
    r.started_unix_ms = 1'790'000'000'000;
    r.duration_s = 42.5;
    r.peer_id = "ab";
    r.peer_address = "10.0.0.1:9773";
    std::vector<measured_flow> first;
    std::uint16_t i = 0;
    for (direction d : {direction::download, direction::upload}) {
        for (test_port p : {test_port::bt, test_port::neutral}) {
            for (std::uint32_t rep = 0; rep < 2; ++rep) {
                for (flow_kind k : {flow_kind::bt, flow_kind::control}) {
                    auto f = make_flow(i, d, p, k, i, false, k == flow_kind::bt ? 9'000 : 180'000);
                    f.repetition = rep;
                    first.push_back(std::move(f));
                    ++i;
                }
            }
        }
        first.push_back(make_flow(i, d, test_port::bt, flow_kind::bt, 100 + i, true, 10'000));
        first.push_back(
            make_flow(i + 1, d, test_port::bt, flow_kind::control, 100 + i, true, 90'000));
        i += 2;
    }
    std::vector<measured_flow> rerun;
    rerun.push_back(make_flow(0, direction::upload, test_port::bt, flow_kind::bt, 0, false, 9'000));
    rerun.push_back(
        make_flow(1, direction::upload, test_port::bt, flow_kind::control, 1, false, 180'000));
    rerun.push_back(
        make_flow(2, direction::upload, test_port::neutral, flow_kind::control, 2, true, 90'000));
    rerun.push_back(
        make_flow(3, direction::upload, test_port::bt, flow_kind::control, 2, true, 90'000));
    r.runs = {first, rerun};
    r.confirmed_keys = {{{direction::upload, test_port::bt}}};
    return r;
}

void expect_same_records(const std::vector<proto::flow_record>& a,
                         const std::vector<proto::flow_record>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(a[i].dir, b[i].dir);
        EXPECT_EQ(a[i].port, b[i].port);
        EXPECT_EQ(a[i].kind, b[i].kind);
        EXPECT_EQ(a[i].repetition, b[i].repetition);
        EXPECT_EQ(a[i].concurrent_group, b[i].concurrent_group);
        EXPECT_DOUBLE_EQ(a[i].mean_bps, b[i].mean_bps);
        EXPECT_DOUBLE_EQ(a[i].interval_s, b[i].interval_s);
        EXPECT_EQ(a[i].interval_bps, b[i].interval_bps);
        EXPECT_EQ(a[i].end, b[i].end);
        ASSERT_EQ(a[i].sender_resets.has_value(), b[i].sender_resets.has_value());
        ASSERT_EQ(a[i].receiver_resets.has_value(), b[i].receiver_resets.has_value());
        if (a[i].sender_resets) {
            EXPECT_EQ(a[i].sender_resets->sent, b[i].sender_resets->sent);
            EXPECT_EQ(a[i].sender_resets->received, b[i].sender_resets->received);
        }
        if (a[i].receiver_resets) {
            EXPECT_EQ(a[i].receiver_resets->sent, b[i].receiver_resets->sent);
            EXPECT_EQ(a[i].receiver_resets->received, b[i].receiver_resets->received);
        }
    }
}

TEST(ReportJson, ReadBackGivesTheAnalysisTheSameFlowsAndVerdicts) {
    test_report original = sample_report();
    ASSERT_TRUE(proto::diff::analyse_runs(original));
    // Through text, as `glasnode analyse` reads a file.
    auto back = report_from_json(nlohmann::json::parse(to_json(original).dump()));
    ASSERT_TRUE(back) << back.err().describe();
    EXPECT_EQ(back->test_id, original.test_id);
    EXPECT_EQ(back->started_unix_ms, original.started_unix_ms);
    EXPECT_EQ(back->peer_address, original.peer_address);
    ASSERT_EQ(back->runs.size(), 2u);
    for (std::size_t run = 0; run < 2; ++run)
        expect_same_records(to_flow_records(original.runs[run]), to_flow_records(back->runs[run]));
    ASSERT_EQ(back->confirmed_keys.size(), 1u);
    ASSERT_EQ(back->confirmed_keys[0].size(), 1u);
    EXPECT_EQ(back->confirmed_keys[0][0].dir, proto::direction::upload);
    EXPECT_EQ(back->confirmed_keys[0][0].port, proto::test_port::bt);

    ASSERT_TRUE(proto::diff::analyse_runs(*back));
    EXPECT_EQ(to_json(*back).at("verdicts"), to_json(original).at("verdicts"));
}

TEST(ReportJson, FlowsCarryEachEndsWireBytes) {
    test_report r = sample_report();
    r.runs[0][0].agent.bytes_sent = 123;
    r.runs[0][0].agent.bytes_received = 456;
    r.runs[0][0].provider.bytes_sent = 789;
    r.runs[0][0].provider.bytes_received = 10;
    const nlohmann::json w = to_json(r).at("flows")[0].at("wire_bytes");
    EXPECT_EQ(w.at("agent_sent"), 123);
    EXPECT_EQ(w.at("agent_received"), 456);
    EXPECT_EQ(w.at("provider_sent"), 789);
    EXPECT_EQ(w.at("provider_received"), 10);
}

TEST(ReportJson, NamesTheCongestionControlTheSendersUsed) {
    test_report r = sample_report();
    EXPECT_EQ(to_json(r).at("congestion_control_used"), "");
    r.runs[0][0].agent.congestion_control = "cubic";
    r.runs[0][0].provider.congestion_control = "cubic";
    r.runs[0][1].agent.congestion_control = "bbr";
    r.runs[0][1].provider.congestion_control = "bbr";
    EXPECT_EQ(congestion_control_used(r), "bbr/cubic");
    EXPECT_EQ(to_json(r).at("congestion_control_used"), "bbr/cubic");
}

TEST(ReportJson, UnidentifiedConnectionsReadBackPerRun) {
    test_report original = sample_report();
    original.unidentified = {proto::diff::unidentified_connections{3, 2, 0}, std::nullopt};
    const nlohmann::json j = to_json(original);
    ASSERT_EQ(j.at("unidentified_connections").size(), 2u);
    EXPECT_EQ(j.at("unidentified_connections")[0].at("could_reset_peer"), 0);
    EXPECT_TRUE(j.at("unidentified_connections")[1].is_null());
    auto back = report_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back) << back.err().describe();
    EXPECT_EQ(back->unidentified, original.unidentified);
    // Reports written before the field: no counts, nothing proven on their word.
    nlohmann::json older = j;
    older.erase("unidentified_connections");
    back = report_from_json(older);
    ASSERT_TRUE(back) << back.err().describe();
    EXPECT_TRUE(back->unidentified.empty());
    // More entries than runs, or a count that is not one: refused.
    nlohmann::json bad = j;
    bad["unidentified_connections"].push_back(nullptr);
    EXPECT_FALSE(report_from_json(bad));
    bad = j;
    bad["unidentified_connections"][0]["connections"] = -1;
    EXPECT_FALSE(report_from_json(bad));
}

TEST(ReportJson, TheByteBudgetAndWhatItLeftUnconfirmedReadBack) {
    test_report original = sample_report();
    original.max_rate_bps = 40'000'000;
    original.max_test_bytes = 250'000'000;
    original.unconfirmed_keys = {{proto::direction::download, proto::test_port::neutral}};
    original.runs[0][0].agent.bytes_sent = 2'000'000;
    original.runs[0][0].agent.bytes_received = 500'000;
    original.runs[1][0].agent.bytes_received = 500'000;
    ASSERT_TRUE(proto::diff::analyse_runs(original));
    const nlohmann::json j = to_json(original);
    EXPECT_EQ(j.at("max_rate_mbps"), 40);
    EXPECT_EQ(j.at("byte_budget_mb"), 250);
    EXPECT_EQ(j.at("agent_wire_mb"), 3);
    ASSERT_EQ(j.at("unconfirmed").size(), 1u);
    EXPECT_EQ(j.at("unconfirmed")[0].at("port"), "neutral");
    auto back = report_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back) << back.err().describe();
    EXPECT_EQ(back->max_rate_bps, original.max_rate_bps);
    EXPECT_EQ(back->max_test_bytes, original.max_test_bytes);
    ASSERT_EQ(back->unconfirmed_keys.size(), 1u);
    EXPECT_EQ(back->unconfirmed_keys[0].dir, proto::direction::download);
    EXPECT_EQ(back->unconfirmed_keys[0].port, proto::test_port::neutral);
    ASSERT_TRUE(proto::diff::analyse_runs(*back));
    EXPECT_EQ(to_json(*back).at("verdicts"), j.at("verdicts"));
    // A malformed list is refused, naming the field.
    nlohmann::json bad = j;
    bad["unconfirmed"][0]["direction"] = "sideways";
    EXPECT_FALSE(report_from_json(bad));
    bad = j;
    bad["unconfirmed"] = "all";
    auto refused = report_from_json(bad);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.err().reason.find("unconfirmed"), std::string::npos);
}

TEST(ReportJson, PooledConfirmationsReadBack) {
    test_report original = sample_report();
    original.pooled = {{{proto::direction::upload, proto::test_port::bt},
                        {proto::direction::upload, proto::test_port::neutral}}};
    ASSERT_TRUE(proto::diff::analyse_runs(original));
    const nlohmann::json j = to_json(original);
    ASSERT_EQ(j.at("pooled_confirmations").size(), 1u);
    EXPECT_EQ(j.at("pooled_confirmations")[0].at("direction"), "upload");
    EXPECT_EQ(j.at("pooled_confirmations")[0].at("port"), "bt");
    EXPECT_EQ(j.at("pooled_confirmations")[0].at("by_port"), "neutral");
    auto back = report_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back) << back.err().describe();
    ASSERT_EQ(back->pooled.size(), 1u);
    EXPECT_EQ(back->pooled[0].pooled.port, proto::test_port::bt);
    EXPECT_EQ(back->pooled[0].by.dir, proto::direction::upload);
    EXPECT_EQ(back->pooled[0].by.port, proto::test_port::neutral);
    ASSERT_TRUE(proto::diff::analyse_runs(*back));
    EXPECT_EQ(to_json(*back).at("verdicts"), j.at("verdicts"));
    nlohmann::json bad = j;
    bad["pooled_confirmations"][0]["by_port"] = "elsewhere";
    auto refused = report_from_json(bad);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.err().reason.find("by_port"), std::string::npos);
}

TEST(ReportJson, ThePairedUploadsPaceReadsBackAndABadOneIsRefused) {
    test_report original = sample_report();
    original.paired_upload_pace_bps = 3'206'000;
    ASSERT_TRUE(proto::diff::analyse_runs(original));
    const nlohmann::json j = to_json(original);
    EXPECT_DOUBLE_EQ(j.at("paired_upload_pace_mbps").get<double>(), 3.206);
    auto back = report_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back) << back.err().describe();
    EXPECT_EQ(back->paired_upload_pace_bps, original.paired_upload_pace_bps);
    ASSERT_TRUE(proto::diff::analyse_runs(*back));
    EXPECT_EQ(to_json(*back).at("verdicts"), j.at("verdicts"));
    for (const nlohmann::json& bad_value :
         {nlohmann::json(-1), nlohmann::json("fast"), nlohmann::json(1e9)}) {
        nlohmann::json bad = j;
        bad["paired_upload_pace_mbps"] = bad_value;
        auto refused = report_from_json(bad);
        ASSERT_FALSE(refused) << bad_value;
        EXPECT_NE(refused.err().reason.find("paired_upload_pace_mbps"), std::string::npos);
    }
}

TEST(ReportJson, FiguresNoFlowCanHaveAreRefusedNamingTheFlow) {
    nlohmann::json j = to_json(sample_report());
    j["flows"][2]["interval_ms"] = 1e12; // an interval of 31 years
    auto back = report_from_json(j);
    ASSERT_FALSE(back);
    EXPECT_EQ(back.err().code, errc::invalid_argument);
    EXPECT_NE(back.err().reason.find("outside what a flow can have"), std::string::npos)
        << back.err().reason;
}

TEST(ReportJson, OlderReportsConfirmWhatTheirRerunsSequentialFlowsCover) {
    auto j = to_json(sample_report());
    ASSERT_EQ(j.at("confirmations").size(), 1u);
    j.erase("confirmations");
    auto back = report_from_json(j);
    ASSERT_TRUE(back) << back.err().describe();
    ASSERT_EQ(back->confirmed_keys.size(), 1u);
    ASSERT_EQ(back->confirmed_keys[0].size(), 1u);
    EXPECT_EQ(back->confirmed_keys[0][0].dir, proto::direction::upload);
    EXPECT_EQ(back->confirmed_keys[0][0].port, proto::test_port::bt);
}

TEST(ReportJson, ReportsWithoutDurationUseTheDurationTheirRateImplies) {
    test_report original = sample_report();
    auto j = to_json(original);
    for (auto& f : j.at("flows"))
        f.erase("duration_us");
    auto back = report_from_json(j);
    ASSERT_TRUE(back) << back.err().describe();
    const auto a = to_flow_records(original.runs[0]);
    const auto b = to_flow_records(back->runs[0]);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i].mean_bps, b[i].mean_bps, 1e-4 * a[i].mean_bps + 100.0) << i;
}

TEST(ReportJson, MalformedReportsAreRefusedNamingTheField) {
    const auto good = to_json(sample_report());
    struct breakage {
        const char* field;
        std::function<void(nlohmann::json&)> apply;
    };
    const std::vector<breakage> cases{
        {"flows",
         [](nlohmann::json& j) {
             j.erase("flows");
         }},
        {"direction",
         [](nlohmann::json& j) {
             j["flows"][0]["direction"] = "sideways";
         }},
        {"kind",
         [](nlohmann::json& j) {
             j["flows"][0].erase("kind");
         }},
        {"agent_end",
         [](nlohmann::json& j) {
             j["flows"][0]["agent_end"] = 3;
         }},
        {"index",
         [](nlohmann::json& j) {
             j["flows"][0]["index"] = -1;
         }},
        {"samples",
         [](nlohmann::json& j) {
             j["flows"][0]["samples"] = "many";
         }},
        {"sample",
         [](nlohmann::json& j) {
             j["flows"][0]["samples"][3] = -5;
         }},
        {"resets.provider_sent",
         [](nlohmann::json& j) {
             j["flows"][0]["resets"].erase("provider_sent");
         }},
        {"interval_ms",
         [](nlohmann::json& j) {
             j["flows"][0]["interval_ms"] = "fast";
         }},
        {"concurrent",
         [](nlohmann::json& j) {
             j["flows"][0].erase("concurrent");
         }},
        {"run",
         [](nlohmann::json& j) {
             j["flows"][0]["run"] = 1000;
         }},
        {"confirmations",
         [](nlohmann::json& j) {
             j["confirmations"] = 5;
         }},
        {"port",
         [](nlohmann::json& j) {
             j["confirmations"][0][0]["port"] = "ftp";
         }},
    };
    for (const auto& c : cases) {
        auto j = good;
        c.apply(j);
        auto r = report_from_json(j);
        ASSERT_FALSE(r) << c.field;
        EXPECT_EQ(r.err().code, errc::invalid_argument) << c.field;
        EXPECT_NE(r.err().reason.find(c.field), std::string::npos) << r.err().reason;
    }
    EXPECT_FALSE(report_from_json(nlohmann::json::array()));
}

TEST(ReportJson, DescriptiveFieldsOfAnotherTypeAreIgnored) {
    // A peer id that is not a string once made report_from_json throw out of glasnode analyse.
    auto j = to_json(sample_report());
    j["peer"] = {{"id", 5}, {"address", nlohmann::json::array()}};
    j["test_id"] = 7;
    j["role"] = nullptr;
    auto r = report_from_json(j);
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->peer_id, "");
    EXPECT_EQ(r->peer_address, "");
    EXPECT_EQ(r->test_id, "");
    EXPECT_EQ(r->role, "agent");
    EXPECT_EQ(r->runs.size(), sample_report().runs.size());
}

TEST(ReportJson, SizesFromTheFileAreBounded) {
    auto j = to_json(sample_report());
    auto too_many = j;
    too_many["flows"] = nlohmann::json::array();
    for (std::size_t i = 0; i <= proto::max_flows; ++i)
        too_many["flows"].push_back(j["flows"][0]);
    auto r = report_from_json(too_many);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::limit_exceeded);

    auto long_flow = j;
    long_flow["flows"][0]["samples"] =
        std::vector<std::uint64_t>(proto::max_samples_per_flow + 1, 1);
    r = report_from_json(long_flow);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::limit_exceeded);
}

} // namespace
} // namespace glasnode::node
