// BitTorrent peer-wire codec for the differential test (sans-IO).
//
// The differential test sends a real BitTorrent peer-wire stream (BEP 3) and, as its control,
// the very same stream with every byte XOR 0xFF. Both encoder and parser therefore take a
// flow_kind: for flow_kind::control every byte they write is inverted and every byte they read
// is inverted back before it is interpreted. Only the handshake and message headers are ever
// touched byte by byte; piece payloads are passed through as spans so that the flow engine can
// keep a pre-inverted payload buffer and never do per-byte work at line rate.
//
// Bounds: a message length prefix above max_message_length (a 16 KiB piece block plus its
// header) or a bitfield longer than the parser's limit fails the parser with
// errc::limit_exceeded before the body is buffered. Malformed messages (a fixed-size message
// with the wrong length, a piece block of 0 bytes, a bad handshake) fail it with
// errc::protocol_error. A failed parser stays failed: every later feed() returns the same
// error, the stream cannot be resynchronised and the caller closes the connection.
//
// Thread-safety: plain values and single-owner objects; one parser per direction of one
// connection, used from one thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "overlay/wire/bytes.hpp"
#include "storage/result.hpp"
#include "tests_proto/flow_types.hpp"

namespace glasnode::proto::diff {

using proto::flow_kind;

// The XOR mask applied to every byte of a flow of this kind.
constexpr std::uint8_t wire_mask(flow_kind kind) noexcept {
    return kind == flow_kind::control ? std::uint8_t{0xff} : std::uint8_t{0x00};
}

inline constexpr std::size_t handshake_size = 68;
inline constexpr std::string_view protocol_name = "BitTorrent protocol";
inline constexpr std::size_t block_size = 16 * 1024;
// Length prefix (4) + id (1) + index (4) + begin (4): what precedes a piece block on the wire.
inline constexpr std::size_t piece_header_size = 13;
// Largest message body (id and fields, without the length prefix) the parser accepts: a piece
// carrying one full block.
inline constexpr std::size_t max_message_length = 9 + block_size;
// Default bitfield bound: 8 KiB covers 65536 pieces, more than any torrent we emulate.
inline constexpr std::size_t default_max_bitfield_bytes = 8 * 1024;
inline constexpr std::size_t request_message_size = 17; // prefix + id + 3 x u32

using info_hash_t = std::array<std::uint8_t, 20>;
using peer_id_t = std::array<std::uint8_t, 20>;

// SHA-1 of the negotiation token: the info-hash that carries the token in the handshake.
info_hash_t info_hash_of_token(byte_view token);

// Reserved bytes a current libtorrent-based client sends: extension protocol (BEP 10), fast
// extension (BEP 6) and DHT (BEP 5).
std::array<std::uint8_t, 8> client_reserved_bytes() noexcept;

// An Azureus-style peer id: "-GN0001-" followed by 12 characters drawn from `entropy`
// (12 bytes, mapped onto [0-9A-Za-z] so that the id is printable like real clients' ids).
peer_id_t make_peer_id(std::span<const std::uint8_t, 12> entropy) noexcept;

struct handshake {
    std::array<std::uint8_t, 8> reserved{};
    info_hash_t info_hash{};
    peer_id_t peer_id{};
};

using handshake_bytes = std::array<std::uint8_t, handshake_size>;

handshake_bytes encode_handshake(const handshake& h, flow_kind kind) noexcept;

// Classifies a stream by its first byte: 0x13 (the protocol name length) is BitTorrent, its
// inverse 0xec is the control flow, anything else is neither.
std::optional<flow_kind> classify_first_byte(std::uint8_t first) noexcept;

// Decodes a complete handshake of a known kind. errc::protocol_error if the protocol name is
// not "BitTorrent protocol".
result<handshake> decode_handshake(std::span<const std::uint8_t, handshake_size> in,
                                   flow_kind kind);

// Classifies and decodes in one step (what a test port does with the first 68 bytes).
struct classified_handshake {
    flow_kind kind;
    handshake hs;
};
result<classified_handshake> classify_handshake(std::span<const std::uint8_t, handshake_size> in);

enum class message_type : std::uint8_t {
    keep_alive,
    choke,
    unchoke,
    interested,
    not_interested,
    have,
    bitfield,
    request,
    piece,      // header of a piece: index, begin, length (block bytes that follow)
    piece_data, // a fragment of the current piece's block (only with deliver_payload)
    cancel,
    port,
    other, // a message id this codec does not interpret (extension messages); body skipped
};

std::string_view to_string(message_type type) noexcept;

// Message ids on the wire (BEP 3, BEP 5).
enum class message_id : std::uint8_t {
    choke = 0,
    unchoke = 1,
    interested = 2,
    not_interested = 3,
    have = 4,
    bitfield = 5,
    request = 6,
    piece = 7,
    cancel = 8,
    port = 9,
};

struct wire_event {
    message_type type = message_type::keep_alive;
    std::uint8_t raw_id = 0;  // the id byte (meaningful for `other`)
    std::uint32_t index = 0;  // have, request, piece, cancel; the port for `port`
    std::uint32_t begin = 0;  // request, piece, cancel; offset within the block for piece_data
    std::uint32_t length = 0; // request, cancel; block length for piece; body length for other
    bytes bitfield;           // bitfield, already un-inverted
    // piece_data only: the fragment as it appeared on the wire (still inverted for a control
    // flow; XOR with wire_mask(kind) to recover the block). Points into the buffer passed to
    // feed() and is valid until that buffer changes.
    byte_view data;
};

// ---- Encoding: each function appends one complete message to `out`. ----
void append_keep_alive(bytes& out, flow_kind kind);
void append_simple(bytes& out, message_id id, flow_kind kind); // choke .. not_interested
void append_have(bytes& out, std::uint32_t index, flow_kind kind);
void append_bitfield(bytes& out, byte_view bits, flow_kind kind);
void append_request(bytes& out, std::uint32_t index, std::uint32_t begin, std::uint32_t length,
                    flow_kind kind);
void append_cancel(bytes& out, std::uint32_t index, std::uint32_t begin, std::uint32_t length,
                   flow_kind kind);
void append_port(bytes& out, std::uint16_t port, flow_kind kind);
// A whole piece message; `block` is given as plain bytes and inverted here for control flows.
// block.size() must be in [1, block_size] (asserted).
void append_piece(bytes& out, std::uint32_t index, std::uint32_t begin, byte_view block,
                  flow_kind kind);
// Only the 13-byte header of a piece message carrying `length` block bytes, for writers that
// send the block from a separate (pre-inverted) buffer with scatter-gather I/O.
void write_piece_header(std::span<std::uint8_t, piece_header_size> out, std::uint32_t index,
                        std::uint32_t begin, std::uint32_t length, flow_kind kind) noexcept;
// Only the 17-byte request message into a caller's buffer (the request pipeline's fast path).
void write_request(std::span<std::uint8_t, request_message_size> out, std::uint32_t index,
                   std::uint32_t begin, std::uint32_t length, flow_kind kind) noexcept;

// In-place XOR with the kind's mask (no-op for bt).
void apply_mask(std::span<std::uint8_t> data, flow_kind kind) noexcept;

struct parser_limits {
    std::size_t max_bitfield_bytes = default_max_bitfield_bytes;
    // Emit piece_data events for block bytes. Off on the fast path: the block is counted and
    // skipped without being looked at.
    bool deliver_payload = false;
};

// Incremental parser of one direction of a peer-wire stream. Accepts input split anywhere.
class wire_parser {
public:
    // expect_handshake: the stream starts with the 68-byte handshake (emitted as no event:
    // read it with handshake() once handshake_done()). A test port that has already consumed
    // the handshake to classify the connection passes false.
    wire_parser(flow_kind kind, bool expect_handshake, parser_limits limits = {});

    // Consumes all of `in`, appending one event per complete message (piece: one event when
    // its header is complete, then piece_data fragments if enabled). Events completed before
    // an error are still appended.
    status feed(byte_view in, std::vector<wire_event>& events);

    bool handshake_done() const noexcept { return m_state != state::handshake; }
    // The peer's handshake; valid once handshake_done() (and expect_handshake was true).
    const handshake& peer_handshake() const noexcept { return m_handshake; }
    bool failed() const noexcept { return m_error.has_value(); }
    flow_kind kind() const noexcept { return m_kind; }
    // Block bytes of piece messages seen so far (whether delivered or skipped).
    std::uint64_t payload_bytes() const noexcept { return m_payload_bytes; }
    // True between messages: no partial message is buffered or being skipped.
    bool at_message_boundary() const noexcept;

private:
    enum class state : std::uint8_t { handshake, length, body, block, skip };

    status fail(errc code, std::string reason);
    status finish_body(std::vector<wire_event>& events);

    flow_kind m_kind;
    std::uint8_t m_mask;
    parser_limits m_limits;
    state m_state;
    std::uint8_t m_prefix[4]{};
    std::size_t m_prefix_have = 0;
    std::uint32_t m_body_length = 0;
    bytes m_body; // the body being buffered (never a piece block)
    std::size_t m_body_need = 0;
    std::uint32_t m_block_left = 0;   // block bytes of the current piece still to come
    std::uint32_t m_block_offset = 0; // block bytes of the current piece already seen
    std::uint32_t m_skip_left = 0;
    handshake m_handshake;
    std::array<std::uint8_t, handshake_size> m_hs_buf{};
    std::size_t m_hs_have = 0;
    std::uint64_t m_payload_bytes = 0;
    std::optional<error> m_error;
};

} // namespace glasnode::proto::diff
