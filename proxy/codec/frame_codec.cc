// WebSocket frame codec (RFC 6455 5.2). See frame_codec.h for the contract.
#include "proxy/codec/frame_codec.h"

#include <cstring>

namespace wsgate::ws {

namespace {

uint64_t read_be(const uint8_t* p, std::size_t bytes) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

bool is_reserved_opcode(uint8_t op) {
  // RFC 6455 5.2: %x3-7 and %xB-F are reserved for further (control) frames.
  return (op >= 0x3 && op <= 0x7) || op >= 0xB;
}

// RFC 6455 7.4.1 (defined codes), 7.4.2 (ranges) and the IANA registry (1012-1014):
// 1004, 1005, 1006 and 1015 are reserved and must never appear on the wire; 0-999 and
// 5000+ are not used; 1016-2999 are reserved for future protocol revisions.
bool is_wire_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

// Length of the longest prefix of `s` (at most `max` bytes) that does not end inside a
// UTF-8 sequence: a truncated close reason stays valid UTF-8 (RFC 6455 5.5.1).
std::size_t utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s.size();
  std::size_t cut = max;
  // Back off over continuation bytes (10xxxxxx) so s[cut] starts a character.
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

}  // namespace

const char* to_string(Opcode op) {
  switch (op) {
    case Opcode::Continuation:
      return "continuation";
    case Opcode::Text:
      return "text";
    case Opcode::Binary:
      return "binary";
    case Opcode::Close:
      return "close";
    case Opcode::Ping:
      return "ping";
    case Opcode::Pong:
      return "pong";
  }
  return "reserved";
}

HeaderStatus parse_frame_header(const uint8_t* p, std::size_t n, FrameHeader& out) {
  if (n < 2) return HeaderStatus::NeedMore;
  FrameHeader h;
  h.fin = (p[0] & 0x80) != 0;
  h.rsv = static_cast<uint8_t>((p[0] >> 4) & 0x7);
  h.opcode = static_cast<uint8_t>(p[0] & 0x0F);
  h.masked = (p[1] & 0x80) != 0;
  const uint8_t len7 = p[1] & 0x7F;

  std::size_t pos = 2;
  if (len7 < 126) {
    h.payload_length = len7;
  } else if (len7 == 126) {
    if (n < 4) return HeaderStatus::NeedMore;
    h.payload_length = read_be(p + 2, 2);
    // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
    if (h.payload_length < 126) return HeaderStatus::Malformed;
    pos = 4;
  } else {
    if (n < 10) return HeaderStatus::NeedMore;
    h.payload_length = read_be(p + 2, 8);
    // RFC 6455 5.2: 64-bit length, "the most significant bit MUST be 0".
    if (h.payload_length >> 63) return HeaderStatus::Malformed;
    // RFC 6455 5.2: minimal encoding; lengths up to 65535 use the 16-bit form.
    if (h.payload_length <= 0xFFFF) return HeaderStatus::Malformed;
    pos = 10;
  }

  if (h.masked) {
    if (n < pos + 4) return HeaderStatus::NeedMore;
    std::memcpy(h.mask.data(), p + pos, 4);
    pos += 4;
  }
  h.header_length = static_cast<uint8_t>(pos);
  out = h;
  return HeaderStatus::Ok;
}

uint16_t FrameValidator::check(const FrameHeader& h) {
  using close_code::kMessageTooBig;
  using close_code::kProtocolError;

  // RFC 6455 5.2: RSV bits MUST be 0 unless an extension defines them. Only RSV1 has a
  // negotiable meaning here (permessage-deflate, RFC 7692).
  if (h.rsv & 0b011) {
    last_error_ = "RSV2/RSV3 set without a negotiated extension";
    return kProtocolError;
  }
  if (h.rsv & 0b100) {
    if (!rules_.rsv1_allowed) {
      last_error_ = "RSV1 set without a negotiated extension";
      return kProtocolError;
    }
    // RFC 7692 6.1: RSV1 only on the first frame of a data message, never on control
    // frames or continuation frames.
    if (h.is_control() || h.opcode == static_cast<uint8_t>(Opcode::Continuation)) {
      last_error_ = "RSV1 set on a control or continuation frame";
      return kProtocolError;
    }
  }

  // RFC 6455 5.1: clients MUST mask every frame, servers MUST NOT mask any.
  if (rules_.direction == Direction::ClientToServer && !h.masked) {
    last_error_ = "unmasked frame from client";
    return kProtocolError;
  }
  if (rules_.direction == Direction::ServerToClient && h.masked) {
    last_error_ = "masked frame from server";
    return kProtocolError;
  }

  // RFC 6455 5.2: reserved opcodes fail the connection.
  if (is_reserved_opcode(h.opcode)) {
    last_error_ = "reserved opcode";
    return kProtocolError;
  }

  if (h.is_control()) {
    // RFC 6455 5.5: control frames carry <= 125 bytes and MUST NOT be fragmented.
    if (h.payload_length > kMaxControlPayload) {
      last_error_ = "control frame payload longer than 125 bytes";
      return kProtocolError;
    }
    if (!h.fin) {
      last_error_ = "fragmented control frame";
      return kProtocolError;
    }
    // RFC 6455 5.4: control frames may be injected between fragments; they neither
    // open nor close a message.
    return 0;
  }

  const bool continuation = h.opcode == static_cast<uint8_t>(Opcode::Continuation);
  // RFC 6455 5.4: a continuation frame continues an open message, and a new data
  // message may only start once the previous one has ended (no interleaving).
  if (continuation && !message_open_) {
    last_error_ = "continuation frame without a message in progress";
    return kProtocolError;
  }
  if (!continuation && message_open_) {
    last_error_ = "new data message while a fragmented message is in progress";
    return kProtocolError;
  }

  const uint64_t so_far = continuation ? message_size_ : 0;
  if (rules_.max_message_size != 0 && (h.payload_length > rules_.max_message_size ||
                                       so_far > rules_.max_message_size - h.payload_length)) {
    last_error_ = "message larger than the configured maximum";
    return kMessageTooBig;  // RFC 6455 7.4.1: 1009, message too big to process
  }

  if (h.fin) {
    message_open_ = false;
    message_size_ = 0;
  } else {
    message_open_ = true;
    message_size_ = so_far + h.payload_length;
  }
  last_error_ = {};
  return 0;
}

ClosePayload parse_close_payload(const uint8_t* payload, std::size_t n, const uint8_t* mask) {
  ClosePayload out;
  // RFC 6455 5.5.1: an empty body means "no status code" (reported as 1005, 7.1.5).
  if (n == 0) return out;
  // RFC 6455 5.5.1: a body starts with a 2-byte code; 1 byte cannot be valid. Control
  // payloads are at most 125 bytes (5.5).
  if (n == 1 || n > kMaxControlPayload) {
    out.valid = false;
    return out;
  }
  uint8_t b[2] = {payload[0], payload[1]};
  if (mask != nullptr) apply_mask(b, 2, mask, 0);
  out.code = static_cast<uint16_t>((b[0] << 8) | b[1]);
  out.valid = is_wire_close_code(out.code);  // RFC 6455 7.4.1/7.4.2
  return out;
}

std::size_t build_close_frame(uint8_t* out, uint16_t code, std::string_view reason,
                              const uint8_t* mask) {
  // A code of 1005 means "no status": it must not be sent (RFC 6455 7.4.1), so the frame
  // gets an empty body, which is how "no status" is expressed on the wire (5.5.1).
  const bool has_code = code != close_code::kNoStatus;
  const std::size_t reason_len = has_code ? utf8_prefix(reason, kMaxControlPayload - 2) : 0;
  const std::size_t payload_len = has_code ? 2 + reason_len : 0;

  out[0] = 0x80 | static_cast<uint8_t>(Opcode::Close);  // FIN: control frames are whole
  out[1] = static_cast<uint8_t>(payload_len);           // <= 125: 7-bit length (5.2)
  std::size_t pos = 2;
  if (mask != nullptr) {
    out[1] |= 0x80;
    std::memcpy(out + pos, mask, 4);
    pos += 4;
  }
  uint8_t* body = out + pos;
  if (has_code) {
    body[0] = static_cast<uint8_t>(code >> 8);
    body[1] = static_cast<uint8_t>(code & 0xFF);
    if (reason_len > 0) std::memcpy(body + 2, reason.data(), reason_len);
  }
  if (mask != nullptr) apply_mask(body, payload_len, mask, 0);  // RFC 6455 5.3
  return pos + payload_len;
}

std::size_t build_control_frame(uint8_t* out, Opcode op, const uint8_t* payload, std::size_t n,
                                const uint8_t* mask) {
  if (n > kMaxControlPayload) n = kMaxControlPayload;              // RFC 6455 5.5
  out[0] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(op));  // FIN: never fragmented
  out[1] = static_cast<uint8_t>(n);
  std::size_t pos = 2;
  if (mask != nullptr) {
    out[1] |= 0x80;
    std::memcpy(out + pos, mask, 4);
    pos += 4;
  }
  if (n > 0) std::memcpy(out + pos, payload, n);
  if (mask != nullptr) apply_mask(out + pos, n, mask, 0);  // RFC 6455 5.3
  return pos + n;
}

void apply_mask(uint8_t* data, std::size_t n, const uint8_t* mask, std::size_t offset) {
  // RFC 6455 5.3: octet i is XORed with mask[i % 4]; `offset` is the position of data[0]
  // in the payload. Rotate the mask once, then XOR a 64-bit word at a time. memcpy keeps
  // the loads and stores alignment-free and byte-order neutral.
  uint8_t rotated[8];
  for (std::size_t i = 0; i < 8; ++i) rotated[i] = mask[(offset + i) & 3];
  uint64_t word;
  std::memcpy(&word, rotated, 8);

  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t v[4];
    std::memcpy(v, data + i, 32);
    v[0] ^= word;
    v[1] ^= word;
    v[2] ^= word;
    v[3] ^= word;
    std::memcpy(data + i, v, 32);
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, data + i, 8);
    v ^= word;
    std::memcpy(data + i, &v, 8);
  }
  for (; i < n; ++i) data[i] ^= rotated[i & 7];
}

}  // namespace wsgate::ws
