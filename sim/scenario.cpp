#include "sim/scenario.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include <toml++/toml.h>

#include "overlay/identity/random.hpp"
#include "tests_proto/negotiation/schedule.hpp"

namespace glasnode::sim {
namespace {

using namespace std::chrono_literals;

// A scenario file is a few hundred bytes; this bounds what a mistaken path (a log, a disk
// image) makes the loader read.
constexpr std::uintmax_t max_file_bytes = 1u << 20;
constexpr std::size_t max_name = 64;
constexpr std::size_t max_description = 1000;

// Bounds of the path: from a dial-up trickle to a fast LAN, and from a LAN RTT to a bad
// geostationary link. The policy and test bounds are next to where they are read.
constexpr double max_rate_mbps = 100'000;
constexpr double min_rtt_ms = 1;
constexpr double max_rtt_ms = 2'000;
constexpr double max_noise = 1;
constexpr std::int64_t max_initial_window = 1'000;
constexpr double max_control_latency_ms = 10'000;
constexpr std::int64_t max_after_bytes = 1'000'000'000'000; // 1 TB: more than any flow carries

class parser {
public:
    explicit parser(std::string_view source) : m_source(source) {}

    error bad(std::string_view key, const std::string& what) const {
        return make_error(errc::invalid_argument,
                          std::string(m_source) + ": " + std::string(key) + ": " + what);
    }

    // Rejects keys outside `known`; keys in `elsewhere` are named as not used by `why`.
    status only_keys(const toml::table& t, const std::string& prefix,
                     std::initializer_list<std::string_view> known,
                     std::initializer_list<std::string_view> elsewhere = {},
                     std::string_view why = {}) const {
        for (const auto& [k, v] : t) {
            const std::string_view name = k.str();
            if (std::find(known.begin(), known.end(), name) != known.end())
                continue;
            if (std::find(elsewhere.begin(), elsewhere.end(), name) != elsewhere.end())
                return bad(join(prefix, name), "not used " + std::string(why));
            return bad(join(prefix, printable(name)), "unknown key");
        }
        return {};
    }

    result<std::optional<double>> number(const toml::table& t, const std::string& prefix,
                                         std::string_view key, double lo, double hi,
                                         bool above_lo) const {
        const toml::node* n = t.get(key);
        if (n == nullptr)
            return std::optional<double>{};
        double v = 0;
        if (const auto* i = n->as_integer())
            v = static_cast<double>(i->get());
        else if (const auto* f = n->as_floating_point())
            v = f->get();
        else
            return bad(join(prefix, key), "expected a number");
        if (!std::isfinite(v) || (above_lo ? v <= lo : v < lo) || v > hi) {
            return bad(join(prefix, key),
                       "must be " + std::string(above_lo ? "above " : "at least ") + show(lo) +
                           " and at most " + show(hi) + " (got " + show(v) + ")");
        }
        return std::optional<double>{v};
    }

    result<std::optional<std::int64_t>> integer(const toml::table& t, const std::string& prefix,
                                                std::string_view key, std::int64_t lo,
                                                std::int64_t hi) const {
        const toml::node* n = t.get(key);
        if (n == nullptr)
            return std::optional<std::int64_t>{};
        const auto* i = n->as_integer();
        if (i == nullptr)
            return bad(join(prefix, key), "expected an integer");
        const std::int64_t v = i->get();
        if (v < lo || v > hi) {
            return bad(join(prefix, key), "must be from " + std::to_string(lo) + " to " +
                                              std::to_string(hi) + " (got " + std::to_string(v) +
                                              ")");
        }
        return std::optional<std::int64_t>{v};
    }

    result<std::optional<bool>> boolean(const toml::table& t, const std::string& prefix,
                                        std::string_view key) const {
        const toml::node* n = t.get(key);
        if (n == nullptr)
            return std::optional<bool>{};
        const auto* b = n->as_boolean();
        if (b == nullptr)
            return bad(join(prefix, key), "expected true or false");
        return std::optional<bool>{b->get()};
    }

    result<std::optional<std::string>> text(const toml::table& t, const std::string& prefix,
                                            std::string_view key, std::size_t max) const {
        const toml::node* n = t.get(key);
        if (n == nullptr)
            return std::optional<std::string>{};
        const auto* s = n->as_string();
        if (s == nullptr)
            return bad(join(prefix, key), "expected a string");
        const std::string& v = s->get();
        if (v.size() > max)
            return bad(join(prefix, key), "longer than " + std::to_string(max) + " bytes");
        if (!std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
            return bad(join(prefix, key), "holds characters other than printable ASCII");
        return std::optional<std::string>{v};
    }

    // A string that must be one of `choices`.
    result<std::optional<std::string>>
    choice(const toml::table& t, const std::string& prefix, std::string_view key,
           std::initializer_list<std::string_view> choices) const {
        auto v = text(t, prefix, key, 64);
        if (!v)
            return v.err();
        if (!*v || std::find(choices.begin(), choices.end(), **v) != choices.end())
            return v;
        std::string list;
        for (std::string_view c : choices)
            list += (list.empty() ? "" : ", ") + std::string(c);
        return bad(join(prefix, key), "expected one of " + list + " (got '" + **v + "')");
    }

    result<const toml::table*> table(const toml::table& t, std::string_view key) const {
        const toml::node* n = t.get(key);
        if (n == nullptr)
            return static_cast<const toml::table*>(nullptr);
        if (const auto* sub = n->as_table())
            return sub;
        return bad(key, "expected a table ([" + std::string(key) + "])");
    }

    static std::string join(const std::string& prefix, std::string_view key) {
        return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
    }

private:
    static std::string show(double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", v);
        return buf;
    }
    // A key as written, if it is safe to echo on a terminal.
    static std::string printable(std::string_view key) {
        const bool ok = key.size() <= 64 && std::all_of(key.begin(), key.end(), [](char c) {
                            return c > 0x20 && c < 0x7f;
                        });
        return ok ? std::string(key) : std::string("(a key with unprintable characters)");
    }

    std::string_view m_source;
};

#define GLASNODE_TRY(var, expr)                                                                    \
    auto var = (expr);                                                                             \
    if (!var)                                                                                      \
        return var.err();

status parse_path(const parser& p, const toml::table* t, scenario& s) {
    if (t == nullptr)
        return p.bad("path", "required: a [path] table with rate_mbps and rtt_ms");
    const std::string px = "path";
    if (auto st = p.only_keys(*t, px,
                              {"rate_mbps", "upload_rate_mbps", "rtt_ms", "noise", "initial_window",
                               "control_latency_ms"});
        !st)
        return st;
    GLASNODE_TRY(rate, p.number(*t, px, "rate_mbps", 0, max_rate_mbps, true));
    if (!*rate)
        return p.bad("path.rate_mbps", "required");
    GLASNODE_TRY(upload, p.number(*t, px, "upload_rate_mbps", 0, max_rate_mbps, true));
    GLASNODE_TRY(rtt, p.number(*t, px, "rtt_ms", min_rtt_ms, max_rtt_ms, false));
    if (!*rtt)
        return p.bad("path.rtt_ms", "required");
    GLASNODE_TRY(noise, p.number(*t, px, "noise", 0, max_noise, false));
    GLASNODE_TRY(window, p.integer(*t, px, "initial_window", 1, max_initial_window));
    GLASNODE_TRY(latency, p.number(*t, px, "control_latency_ms", 0, max_control_latency_ms, false));
    s.path.download_bps = **rate * 1e6;
    s.path.upload_bps = upload->value_or(**rate) * 1e6;
    s.path.rtt = std::chrono::microseconds(std::llround(**rtt * 1e3));
    s.path.noise = noise->value_or(0.0);
    s.path.initial_window = static_cast<std::uint32_t>(window->value_or(10));
    // By default the control connection crosses the same path as the flows: half an RTT.
    s.control_latency = latency->has_value()
                            ? std::chrono::microseconds(std::llround(**latency * 1e3))
                            : s.path.rtt / 2;
    return {};
}

status parse_policy(const parser& p, const toml::table* t, scenario& s) {
    if (t == nullptr)
        return {}; // neutral
    const std::string px = "policy";
    GLASNODE_TRY(kind, p.choice(*t, px, "kind",
                                {"neutral", "content-throttle", "port-throttle", "delayed-throttle",
                                 "stateful-throttle", "block", "forged-reset"}));
    if (!*kind)
        return p.bad("policy.kind", "required");
    s.policy_kind = **kind;
    const std::string& k = s.policy_kind;
    const std::initializer_list<std::string_view> all = {
        "kind", "fraction", "after_bytes", "first_packet", "match", "mode", "port", "directions"};
    const std::string why = "by policy kind '" + k + "'";
    status keys;
    if (k == "neutral")
        keys = p.only_keys(*t, px, {"kind"}, all, why);
    else if (k == "content-throttle" || k == "stateful-throttle")
        keys = p.only_keys(*t, px, {"kind", "fraction", "directions"}, all, why);
    else if (k == "port-throttle")
        keys = p.only_keys(*t, px, {"kind", "fraction", "port", "directions"}, all, why);
    else if (k == "delayed-throttle")
        keys = p.only_keys(
            *t, px, {"kind", "fraction", "after_bytes", "match", "port", "directions"}, all, why);
    else if (k == "block")
        keys = p.only_keys(*t, px, {"kind", "match", "mode", "port", "directions"}, all, why);
    else
        keys = p.only_keys(*t, px,
                           {"kind", "after_bytes", "first_packet", "match", "port", "directions"},
                           all, why);
    if (!keys)
        return keys;

    path_policy& pol = s.policy;
    if (k == "neutral") {
        pol.action = policy_action::none;
        return {};
    }
    if (k == "content-throttle" || k == "port-throttle" || k == "delayed-throttle" ||
        k == "stateful-throttle") {
        pol.action = policy_action::throttle;
        GLASNODE_TRY(fraction, p.number(*t, px, "fraction", 0, 1, true));
        if (!*fraction)
            return p.bad("policy.fraction", "required by policy kind '" + k + "'");
        pol.fraction = **fraction;
    }
    if (k == "block")
        pol.action = policy_action::block;
    if (k == "forged-reset")
        pol.action = policy_action::reset;

    if (k == "content-throttle" || k == "stateful-throttle") {
        pol.match = policy_match::content;
        pol.remember_endpoints = k == "stateful-throttle";
    } else if (k == "port-throttle") {
        pol.match = policy_match::port;
    } else {
        GLASNODE_TRY(match, p.choice(*t, px, "match", {"content", "port"}));
        const std::string fallback = k == "block" ? "port" : "content";
        pol.match =
            match->value_or(fallback) == "port" ? policy_match::port : policy_match::content;
    }

    GLASNODE_TRY(port, p.integer(*t, px, "port", 1, 65535));
    if (*port && pol.match != policy_match::port)
        return p.bad("policy.port", "only with match = \"port\"");
    pol.port = static_cast<std::uint16_t>(port->value_or(6881));

    if (k == "delayed-throttle" || k == "forged-reset") {
        GLASNODE_TRY(after, p.integer(*t, px, "after_bytes", 0, max_after_bytes));
        if (k == "delayed-throttle" && (!*after || **after == 0))
            return p.bad("policy.after_bytes",
                         "required above 0 by policy kind 'delayed-throttle' (the bytes that go "
                         "at full rate)");
        pol.after_bytes = static_cast<std::uint64_t>(after->value_or(0));
        if (k == "forged-reset") {
            GLASNODE_TRY(first, p.boolean(*t, px, "first_packet"));
            pol.first_packet = first->value_or(false);
            if (pol.first_packet && *after)
                return p.bad("policy.after_bytes",
                             "not with first_packet = true (the reset answers the handshake)");
        }
    }

    if (k == "block") {
        GLASNODE_TRY(mode, p.choice(*t, px, "mode", {"drop", "reject", "stall"}));
        const std::string m = mode->value_or(pol.match == policy_match::port ? "drop" : "stall");
        if (m != "stall" && pol.match == policy_match::content)
            return p.bad("policy.mode", "'" + m +
                                            "' needs match = \"port\": a SYN carries no payload "
                                            "to classify, so a content block can only stall");
        pol.block = m == "drop"     ? block_mode::drop
                    : m == "reject" ? block_mode::reject
                                    : block_mode::stall;
    }

    if (const toml::node* n = t->get("directions")) {
        const toml::array* a = n->as_array();
        if (a == nullptr || a->empty() || a->size() > 2)
            return p.bad("policy.directions", "expected [\"download\"], [\"upload\"] or both");
        pol.download = pol.upload = false;
        for (const toml::node& d : *a) {
            const auto* v = d.as_string();
            if (v == nullptr || (v->get() != "download" && v->get() != "upload"))
                return p.bad("policy.directions", "expected \"download\" or \"upload\" entries");
            (v->get() == "download" ? pol.download : pol.upload) = true;
        }
    }
    return {};
}

status parse_test(const parser& p, const toml::table* t, scenario& s) {
    if (t != nullptr) {
        const std::string px = "test";
        if (auto st = p.only_keys(*t, px,
                                  {"flow_ms", "repetitions", "pairs", "confirm", "time_budget_s"});
            !st)
            return st;
        const proto::negotiation::schedule_bounds bounds;
        GLASNODE_TRY(flow_ms, p.integer(*t, px, "flow_ms", bounds.min_flow_duration.count(),
                                        bounds.max_flow_duration.count()));
        // Five of each is already a long test; more would only stretch the provider's bounds.
        GLASNODE_TRY(reps, p.integer(*t, px, "repetitions", 1, 5));
        GLASNODE_TRY(pairs, p.integer(*t, px, "pairs", 0, 5));
        GLASNODE_TRY(confirm, p.boolean(*t, px, "confirm"));
        GLASNODE_TRY(budget, p.integer(*t, px, "time_budget_s", 0, 3600));
        if (*budget)
            s.schedule.time_budget = std::chrono::seconds(**budget);
        if (*flow_ms)
            s.schedule.flow_duration = std::chrono::milliseconds(**flow_ms);
        if (*reps)
            s.schedule.sequential_repetitions = static_cast<std::uint32_t>(**reps);
        if (*pairs)
            s.schedule.concurrent_repetitions = static_cast<std::uint32_t>(**pairs);
        s.confirm = confirm->value_or(true);
    }
    // The provider checks the schedule against its bounds; a scenario the default provider would
    // refuse is a mistake in the file, said here rather than as a failed simulated test.
    splitmix_random any(0);
    const auto schedule = proto::diff::make_schedule(s.schedule, any);
    if (auto wall = proto::negotiation::validate_schedule(schedule, {}); !wall) {
        return p.bad("test", "a provider would refuse this test: " + wall.err().reason +
                                 " (lower test.repetitions, test.pairs or test.flow_ms)");
    }
    return {};
}

status parse_expect(const parser& p, const toml::node* n, scenario& s) {
    if (n == nullptr)
        return {};
    const toml::array* a = n->as_array();
    if (a == nullptr || !a->is_array_of_tables())
        return p.bad("expect", "expected [[expect]] tables");
    if (a->size() > 4)
        return p.bad("expect", "more than the 4 (direction, port) comparisons a test has");
    for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::table& t = *a->at(i).as_table();
        const std::string px = "expect[" + std::to_string(i) + "]";
        if (auto st = p.only_keys(t, px, {"direction", "port", "verdict", "basis"}); !st)
            return st;
        GLASNODE_TRY(dir, p.choice(t, px, "direction", {"download", "upload"}));
        GLASNODE_TRY(port, p.choice(t, px, "port", {"bt", "neutral"}));
        GLASNODE_TRY(verdict,
                     p.choice(t, px, "verdict",
                              {"none", "throttled", "blocked", "reset-injected", "inconclusive"}));
        GLASNODE_TRY(basis, p.choice(t, px, "basis", {"none", "content", "port", "endpoint"}));
        if (!*dir || !*port || !*verdict)
            return p.bad(px, "needs direction, port and verdict");
        expected_verdict e;
        e.dir = **dir == "upload" ? proto::direction::upload : proto::direction::download;
        e.port = **port == "bt" ? proto::test_port::bt : proto::test_port::neutral;
        e.outcome = *proto::parse_verdict(**verdict);
        if (*basis)
            e.why = proto::parse_basis(**basis);
        const bool twice = std::any_of(s.expect.begin(), s.expect.end(), [&](const auto& x) {
            return x.dir == e.dir && x.port == e.port;
        });
        if (twice)
            return p.bad(px, "a second expectation for " + **dir + "/" + **port);
        s.expect.push_back(e);
    }
    return {};
}

#undef GLASNODE_TRY

} // namespace

result<scenario> parse_scenario(std::string_view toml_text, std::string_view source) {
    const parser p(source);
    toml::table root;
    // Debian's toml++ is built with exceptions: parse errors arrive as toml::parse_error.
    try {
        root = toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
        return make_error(errc::invalid_argument, std::string(source) + ":" +
                                                      std::to_string(e.source().begin.line) + ": " +
                                                      std::string(e.description()));
    }
    if (auto st = p.only_keys(root, "",
                              {"name", "description", "seed", "path", "policy", "test", "expect"});
        !st)
        return st.err();
    scenario s;
    auto name = p.text(root, "", "name", max_name);
    if (!name)
        return name.err();
    s.name = name->value_or(std::filesystem::path(std::string(source)).stem().string());
    auto description = p.text(root, "", "description", max_description);
    if (!description)
        return description.err();
    s.description = description->value_or("");
    auto seed = p.integer(root, "", "seed", 0, std::numeric_limits<std::int64_t>::max());
    if (!seed)
        return seed.err();
    s.seed = static_cast<std::uint64_t>(seed->value_or(1));

    auto path = p.table(root, "path");
    if (!path)
        return path.err();
    if (auto st = parse_path(p, *path, s); !st)
        return st.err();
    auto policy = p.table(root, "policy");
    if (!policy)
        return policy.err();
    if (auto st = parse_policy(p, *policy, s); !st)
        return st.err();
    auto test = p.table(root, "test");
    if (!test)
        return test.err();
    if (auto st = parse_test(p, *test, s); !st)
        return st.err();
    if (auto st = parse_expect(p, root.get("expect"), s); !st)
        return st.err();
    return s;
}

result<scenario> load_scenario(const std::filesystem::path& file) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec)
        return make_error(ec == std::errc::no_such_file_or_directory ? errc::not_found
                                                                     : errc::invalid_argument,
                          file.string() + ": " + ec.message());
    if (size > max_file_bytes)
        return make_error(errc::invalid_argument, file.string() + ": " + std::to_string(size) +
                                                      " bytes, more than a scenario file can be (" +
                                                      std::to_string(max_file_bytes) + ")");
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof())
        return make_error(errc::invalid_argument, file.string() + ": could not be read");
    return parse_scenario(text.str(), file.string());
}

harness_options harness_for(const scenario& s, std::uint64_t seed) {
    harness_options o;
    o.seed = seed;
    o.path = s.path;
    o.policy = s.policy;
    o.control_latency = s.control_latency;
    o.agent.schedule = s.schedule;
    o.agent.confirm = s.confirm;
    return o;
}

std::vector<expectation_check> check_expectations(const scenario& s,
                                                  const proto::test_analysis& analysis) {
    std::vector<expectation_check> out;
    for (const expected_verdict& e : s.expect) {
        expectation_check c;
        c.expected = e;
        const auto it = std::find_if(
            analysis.verdicts.begin(), analysis.verdicts.end(),
            [&](const proto::port_verdict& v) { return v.dir == e.dir && v.port == e.port; });
        if (it != analysis.verdicts.end()) {
            c.actual = it->outcome;
            c.actual_basis = it->why;
            c.met = it->outcome == e.outcome && (!e.why || it->why == *e.why);
        }
        out.push_back(c);
    }
    return out;
}

} // namespace glasnode::sim
