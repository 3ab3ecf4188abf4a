// libFuzzer target for the peer-wire parser: arbitrary bytes, split at a point chosen by the
// input, parsed as both flow kinds. The parser must never crash, never buffer beyond its
// bounds, and give the same events whatever the split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tests_proto/diff/bt_wire.hpp"

using namespace glasnode::proto::diff;

namespace {

bool same(const std::vector<wire_event>& a, const std::vector<wire_event>& b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].type != b[i].type || a[i].index != b[i].index || a[i].begin != b[i].begin ||
            a[i].length != b[i].length || a[i].bitfield != b[i].bitfield)
            return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const bool expect_handshake = (data[0] & 1) != 0;
    const glasnode::byte_view in(data + 1, size - 1);
    const std::size_t split = data[0] % in.size();
    for (flow_kind kind : {flow_kind::bt, flow_kind::control}) {
        wire_parser whole(kind, expect_handshake);
        std::vector<wire_event> a;
        const auto sa = whole.feed(in, a);

        wire_parser parts(kind, expect_handshake);
        std::vector<wire_event> b;
        auto sb = parts.feed(in.first(split), b);
        if (sb)
            sb = parts.feed(in.subspan(split), b);

        if (sa.ok() != sb.ok() || !same(a, b))
            std::abort();
        for (const auto& e : a)
            if (e.bitfield.size() > default_max_bitfield_bytes)
                std::abort();
    }
    return 0;
}
