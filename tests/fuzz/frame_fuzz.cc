// WebSocket frames (proxy/codec/frame_codec.h) as the relay meets them: a byte stream that
// arrives in reads of any size. A small streaming driver (the same steps a Pipe takes:
// parse a header from what it holds, validate it, skip or collect the payload) is fed the
// same bytes whole, in the chunk sizes the input picks, and one byte at a time.
// Properties:
//  - the verdict and every frame seen are independent of the split;
//  - parse_frame_header says NeedMore on every prefix of a header, never Malformed or Ok;
//  - unmasking in pieces (apply_mask with an offset) equals unmasking at once;
//  - build_close_frame / build_control_frame round-trip through the parser, the validator
//    and parse_close_payload; a truncated close reason stays valid UTF-8 when it was.
//
// Input layout: byte 0 = rules (bit 0: server-to-client; bit 1: RSV1 allowed; bits 2-3:
// max message size 0 / 125 / 4096 / 1 MiB), bytes 1-4 = chunk sizes (1..20), the rest =
// the frame stream.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec/frame_codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace ws = wsgate::ws;
using wsgate::fuzz::valid_utf8;

namespace {

struct Event {
  ws::FrameHeader header;
  uint16_t verdict = 0;
  bool malformed = false;
  uint64_t payload_hash = 0;  // FNV-1a of the unmasked payload, when complete
  uint16_t close_code = 0;
  bool close_valid = false;
  bool complete = false;  // the whole payload was seen

  bool operator==(const Event& o) const {
    const ws::FrameHeader& a = header;
    const ws::FrameHeader& b = o.header;
    return a.fin == b.fin && a.rsv == b.rsv && a.opcode == b.opcode && a.masked == b.masked &&
           a.mask == b.mask && a.payload_length == b.payload_length &&
           a.header_length == b.header_length && verdict == o.verdict && malformed == o.malformed &&
           payload_hash == o.payload_hash && close_code == o.close_code &&
           close_valid == o.close_valid && complete == o.complete;
  }
};

class Driver {
 public:
  explicit Driver(const ws::FrameRules& rules) : validator_(rules) {}

  void feed(const uint8_t* p, std::size_t n) {
    while (n > 0 && !stopped_) {
      if (!in_payload_) {
        // Take header bytes one read at a time, like a Pipe peeking its buffer.
        const std::size_t take = std::min(n, ws::kMaxHeaderSize - pending_.size());
        const std::size_t before = pending_.size();
        pending_.insert(pending_.end(), p, p + take);
        ws::FrameHeader h;
        const ws::HeaderStatus s = ws::parse_frame_header(pending_.data(), pending_.size(), h);
        if (s == ws::HeaderStatus::NeedMore) {
          p += take;
          n -= take;
          continue;
        }
        Event e;
        if (s == ws::HeaderStatus::Malformed) {
          e.malformed = true;
          events_.push_back(e);
          stopped_ = true;
          return;
        }
        check_prefixes(h);
        e.header = h;
        e.verdict = validator_.check(h);
        if (e.verdict != 0) FUZZ_CHECK(!validator_.last_error().empty());
        events_.push_back(e);
        if (e.verdict != 0) {
          stopped_ = true;
          return;
        }
        // Bytes of this read past the header belong to the payload.
        const std::size_t used = h.header_length - before;
        p += used;
        n -= used;
        pending_.clear();
        start_payload(h);
        continue;
      }
      const std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(n, remaining_));
      payload_bytes(p, take);
      p += take;
      n -= take;
    }
  }

  const std::vector<Event>& events() const { return events_; }

 private:
  // Every shorter prefix of a header that parsed is NeedMore; any longer input parses
  // to the same header.
  void check_prefixes(const ws::FrameHeader& h) {
    for (std::size_t k = 0; k < h.header_length; ++k) {
      ws::FrameHeader tmp;
      FUZZ_CHECK(ws::parse_frame_header(pending_.data(), k, tmp) == ws::HeaderStatus::NeedMore);
    }
    FUZZ_CHECK(h.header_length >= 2 && h.header_length <= ws::kMaxHeaderSize);
  }

  void start_payload(const ws::FrameHeader& h) {
    in_payload_ = true;
    remaining_ = h.payload_length;
    offset_ = 0;
    hash_ = 1469598103934665603ULL;
    control_.clear();
    if (remaining_ == 0) finish_payload();
  }

  void payload_bytes(const uint8_t* p, std::size_t n) {
    const ws::FrameHeader& h = events_.back().header;
    std::vector<uint8_t> chunk(p, p + n);
    if (h.is_control()) control_.insert(control_.end(), p, p + n);  // still masked
    if (h.masked) ws::apply_mask(chunk.data(), n, h.mask.data(), offset_);
    for (uint8_t b : chunk) hash_ = (hash_ ^ b) * 1099511628211ULL;
    offset_ += n;
    remaining_ -= n;
    if (remaining_ == 0) finish_payload();
  }

  void finish_payload() {
    Event& e = events_.back();
    e.payload_hash = hash_;
    e.complete = true;
    if (e.header.opcode == static_cast<uint8_t>(ws::Opcode::Close)) {
      const ws::ClosePayload c = ws::parse_close_payload(
          control_.data(), control_.size(), e.header.masked ? e.header.mask.data() : nullptr);
      e.close_code = c.code;
      e.close_valid = c.valid;
      // Unmasking the whole payload at once gives the bytes the pieces gave.
      std::vector<uint8_t> whole = control_;
      if (e.header.masked) ws::apply_mask(whole.data(), whole.size(), e.header.mask.data(), 0);
      uint64_t hash = 1469598103934665603ULL;
      for (uint8_t b : whole) hash = (hash ^ b) * 1099511628211ULL;
      FUZZ_CHECK(hash == e.payload_hash);
      if (whole.size() >= 2) FUZZ_CHECK(c.code == ((whole[0] << 8) | whole[1]));
    }
    in_payload_ = false;
  }

  ws::FrameValidator validator_;
  std::vector<Event> events_;
  std::vector<uint8_t> pending_;  // header bytes held so far
  std::vector<uint8_t> control_;  // a control frame's payload, as received
  bool in_payload_ = false;
  bool stopped_ = false;
  uint64_t remaining_ = 0;
  std::size_t offset_ = 0;
  uint64_t hash_ = 0;
};

// The frames the gateway writes itself parse back to what was asked for.
void round_trip(uint16_t code, std::string_view text, const uint8_t* mask_bytes) {
  for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), mask_bytes}) {
    std::array<uint8_t, ws::kMaxHeaderSize + ws::kMaxControlPayload> frame{};
    const std::size_t n = ws::build_close_frame(frame.data(), code, text, mask);
    ws::FrameHeader h;
    FUZZ_CHECK(ws::parse_frame_header(frame.data(), n, h) == ws::HeaderStatus::Ok);
    FUZZ_CHECK(h.opcode == static_cast<uint8_t>(ws::Opcode::Close) && h.fin);
    FUZZ_CHECK(h.masked == (mask != nullptr));
    FUZZ_CHECK(h.header_length + h.payload_length == n);
    FUZZ_CHECK(h.payload_length <= ws::kMaxControlPayload);
    ws::FrameValidator v(
        {mask != nullptr ? ws::Direction::ClientToServer : ws::Direction::ServerToClient, false,
         0});
    FUZZ_CHECK(v.check(h) == 0);
    const ws::ClosePayload c =
        ws::parse_close_payload(frame.data() + h.header_length, h.payload_length, mask);
    if (code == ws::close_code::kNoStatus) {
      FUZZ_CHECK(h.payload_length == 0 && c.code == ws::close_code::kNoStatus && c.valid);
    } else {
      FUZZ_CHECK(c.code == code);
      std::string reason(reinterpret_cast<const char*>(frame.data() + h.header_length + 2),
                         h.payload_length - 2);
      if (mask != nullptr) {
        ws::apply_mask(reinterpret_cast<uint8_t*>(reason.data()), reason.size(), mask, 2);
      }
      FUZZ_CHECK(text.substr(0, reason.size()) == reason);
      if (valid_utf8(text)) FUZZ_CHECK(valid_utf8(reason));
      if (text.size() <= ws::kMaxControlPayload - 2) FUZZ_CHECK(reason.size() == text.size());
    }

    const std::size_t m =
        ws::build_control_frame(frame.data(), ws::Opcode::Ping,
                                reinterpret_cast<const uint8_t*>(text.data()), text.size(), mask);
    FUZZ_CHECK(ws::parse_frame_header(frame.data(), m, h) == ws::HeaderStatus::Ok);
    FUZZ_CHECK(h.opcode == static_cast<uint8_t>(ws::Opcode::Ping) && h.fin);
    FUZZ_CHECK(h.header_length + h.payload_length == m);
    FUZZ_CHECK(v.check(h) == 0);
    std::string body(reinterpret_cast<const char*>(frame.data() + h.header_length),
                     h.payload_length);
    if (mask != nullptr)
      ws::apply_mask(reinterpret_cast<uint8_t*>(body.data()), body.size(), mask, 0);
    FUZZ_CHECK(text.substr(0, ws::kMaxControlPayload) == body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  ws::FrameRules rules;
  rules.direction = (data[0] & 1) ? ws::Direction::ServerToClient : ws::Direction::ClientToServer;
  rules.rsv1_allowed = (data[0] & 2) != 0;
  constexpr uint64_t kSizes[] = {0, 125, 4096, 1 << 20};
  rules.max_message_size = kSizes[(data[0] >> 2) & 3];
  std::array<std::size_t, 4> chunks{};
  for (std::size_t i = 0; i < 4; ++i) chunks[i] = data[1 + i] % 20 + 1;
  const uint8_t* stream = data + 5;
  const std::size_t n = size - 5;

  Driver whole(rules);
  whole.feed(stream, n);

  Driver split(rules);
  for (std::size_t pos = 0, i = 0; pos < n; ++i) {
    const std::size_t len = std::min(chunks[i % 4], n - pos);
    split.feed(stream + pos, len);
    pos += len;
  }
  FUZZ_CHECK(split.events() == whole.events());

  Driver bytes(rules);
  for (std::size_t pos = 0; pos < n; ++pos) bytes.feed(stream + pos, 1);
  FUZZ_CHECK(bytes.events() == whole.events());

  const uint16_t code = static_cast<uint16_t>((data[1] << 8) | data[2]);
  round_trip(code,
             std::string_view(reinterpret_cast<const char*>(stream), std::min<std::size_t>(n, 200)),
             data + 1);
  return 0;
}
