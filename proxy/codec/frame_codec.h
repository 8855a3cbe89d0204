// WebSocket frame codec (RFC 6455 5.2): header parsing, the per-direction rule checks,
// close payloads and the few frames the gateway writes itself. Pure: no I/O, no
// allocation. The relay's Pipe drives it over bytes it then moves without copying.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsgate::ws {

enum class Opcode : uint8_t {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xA,
};
const char* to_string(Opcode op);  // "continuation", "text", ... "reserved"

// Close codes the gateway uses (RFC 6455 7.4.1).
namespace close_code {
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kUnsupportedData = 1003;
inline constexpr uint16_t kNoStatus = 1005;  // never sent; "no code in the Close"
inline constexpr uint16_t kAbnormal = 1006;  // never sent; "closed without a Close"
inline constexpr uint16_t kInvalidPayload = 1007;
inline constexpr uint16_t kPolicyViolation = 1008;
inline constexpr uint16_t kMessageTooBig = 1009;
inline constexpr uint16_t kInternalError = 1011;
}  // namespace close_code

inline constexpr std::size_t kMaxHeaderSize = 14;  // 2 + 8 (length) + 4 (mask)
inline constexpr std::size_t kMaxControlPayload = 125;

struct FrameHeader {
  bool fin = false;
  uint8_t rsv = 0;     // RSV1..3 as bits 0b100, 0b010, 0b001
  uint8_t opcode = 0;  // raw 4 bits (may be a reserved value; the validator rejects it)
  bool masked = false;
  std::array<uint8_t, 4> mask{};
  uint64_t payload_length = 0;
  uint8_t header_length = 0;  // 2..14 bytes

  bool is_control() const { return (opcode & 0x8) != 0; }
};

enum class HeaderStatus { NeedMore, Ok, Malformed };

// Parses a header from the first `n` bytes of `p`. NeedMore when n is too short for the
// header that has started. Malformed: a 64-bit length with its top bit set, or a length
// not in its minimal encoding (RFC 6455 5.2 "the minimal number of bytes MUST be used").
HeaderStatus parse_frame_header(const uint8_t* p, std::size_t n, FrameHeader& out);

enum class Direction { ClientToServer, ServerToClient };

struct FrameRules {
  Direction direction = Direction::ClientToServer;
  // Extensions negotiated on this connection that define RSV1 (permessage-deflate).
  bool rsv1_allowed = false;
  uint64_t max_message_size = 0;  // 0: no limit
};

// Checks one direction's frame sequence. Feed every header in order; it remembers
// whether a fragmented message is open and how big the current message is.
class FrameValidator {
 public:
  explicit FrameValidator(const FrameRules& rules) : rules_(rules) {}

  // 0 when the frame may pass; otherwise the close code to send to the frame's sender:
  //  1002: client frame unmasked / server frame masked (RFC 6455 5.1), reserved opcode
  //        (5.2), RSV bit without an extension (5.2), control frame longer than 125 or
  //        fragmented (5.5), continuation without a message open, or a new data
  //        message while one is open (5.4);
  //  1009: the message (sum of its frames) would exceed max_message_size.
  uint16_t check(const FrameHeader& h);

  // Why the last non-zero check() failed, one short line for logs and close reasons.
  std::string_view last_error() const { return last_error_; }
  bool in_fragmented_message() const { return message_open_; }

 private:
  FrameRules rules_;
  bool message_open_ = false;
  uint64_t message_size_ = 0;
  std::string_view last_error_;
};

struct ClosePayload {
  uint16_t code = close_code::kNoStatus;  // kNoStatus when the payload is empty
  bool valid = true;  // false: 1-byte payload or a code not allowed on the wire (7.4)
};

// Reads a Close frame's payload (`n` <= 125 bytes), unmasking with `mask` when given.
// Codes allowed on the wire: 1000-1003, 1007-1014, 3000-4999 (RFC 6455 7.4.1/7.4.2).
ClosePayload parse_close_payload(const uint8_t* payload, std::size_t n, const uint8_t* mask);

// Writes a complete Close frame with `code` and a `reason` (truncated to fit 125 bytes)
// into `out` (at least kMaxHeaderSize + 125 bytes). `mask` non-null: a masked frame as
// a client must send (RFC 6455 5.3). Returns the frame's length.
std::size_t build_close_frame(uint8_t* out, uint16_t code, std::string_view reason,
                              const uint8_t* mask);

// Writes a complete Ping or Pong frame carrying `n` <= 125 bytes of `payload` into `out`
// (at least kMaxHeaderSize + n bytes), masked with `mask` when non-null (RFC 6455 5.3).
// Returns the frame's length.
std::size_t build_control_frame(uint8_t* out, Opcode op, const uint8_t* payload, std::size_t n,
                                const uint8_t* mask);

// XORs `n` bytes in place with the 4-byte mask, starting at mask position `offset`.
void apply_mask(uint8_t* data, std::size_t n, const uint8_t* mask, std::size_t offset);

}  // namespace wsgate::ws
