// Tests for proxy/codec/frame_codec: header parsing, the validator, close payloads, masking.
#include "proxy/codec/frame_codec.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace ws = wsgate::ws;

namespace {

constexpr uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

// Minimal (RFC 6455 5.2) header encoding, independent of the code under test.
std::vector<uint8_t> encode_header(bool fin, uint8_t rsv, uint8_t opcode, uint64_t len,
                                   const uint8_t* mask) {
  std::vector<uint8_t> b;
  b.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  const uint8_t mbit = mask != nullptr ? 0x80 : 0;
  if (len < 126) {
    b.push_back(static_cast<uint8_t>(mbit | len));
  } else if (len <= 0xFFFF) {
    b.push_back(mbit | 126);
    b.push_back(static_cast<uint8_t>(len >> 8));
    b.push_back(static_cast<uint8_t>(len));
  } else {
    b.push_back(mbit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(len >> shift));
  }
  if (mask != nullptr) b.insert(b.end(), mask, mask + 4);
  return b;
}

ws::FrameHeader header(uint8_t opcode, bool fin, uint64_t len, bool masked, uint8_t rsv = 0) {
  ws::FrameHeader h;
  h.opcode = opcode;
  h.fin = fin;
  h.payload_length = len;
  h.masked = masked;
  h.rsv = rsv;
  if (masked) std::memcpy(h.mask.data(), kMask, 4);
  return h;
}

constexpr uint8_t kCont = 0x0, kText = 0x1, kBin = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA;

ws::FrameRules client_rules(uint64_t max = 0, bool rsv1 = false) {
  ws::FrameRules r;
  r.direction = ws::Direction::ClientToServer;
  r.max_message_size = max;
  r.rsv1_allowed = rsv1;
  return r;
}

ws::ClosePayload close_of(uint16_t code, const uint8_t* mask = nullptr) {
  uint8_t b[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  if (mask != nullptr) {
    b[0] ^= mask[0];
    b[1] ^= mask[1];
  }
  return ws::parse_close_payload(b, 2, mask);
}

}  // namespace

TEST_CASE("to_string names opcodes") {
  CHECK(std::string(ws::to_string(ws::Opcode::Text)) == "text");
  CHECK(std::string(ws::to_string(ws::Opcode::Continuation)) == "continuation");
  CHECK(std::string(ws::to_string(ws::Opcode::Pong)) == "pong");
  CHECK(std::string(ws::to_string(static_cast<ws::Opcode>(0x3))) == "reserved");
}

TEST_CASE("parse_frame_header: payload lengths, masked and unmasked") {
  const uint64_t lengths[] = {0, 125, 126, 65535, 65536, uint64_t{1} << 32};
  const uint8_t expected_len_bytes[] = {0, 0, 2, 2, 8, 8};
  for (int masked = 0; masked < 2; ++masked) {
    for (std::size_t i = 0; i < std::size(lengths); ++i) {
      CAPTURE(masked);
      CAPTURE(lengths[i]);
      const auto bytes = encode_header(true, 0, kBin, lengths[i], masked ? kMask : nullptr);
      ws::FrameHeader h;
      REQUIRE(ws::parse_frame_header(bytes.data(), bytes.size(), h) == ws::HeaderStatus::Ok);
      CHECK(h.fin);
      CHECK(h.rsv == 0);
      CHECK(h.opcode == kBin);
      CHECK(h.masked == (masked != 0));
      CHECK(h.payload_length == lengths[i]);
      CHECK(h.header_length == 2 + expected_len_bytes[i] + (masked ? 4 : 0));
      CHECK(h.header_length == bytes.size());
      if (masked) CHECK(std::memcmp(h.mask.data(), kMask, 4) == 0);
      CHECK_FALSE(h.is_control());

      // Trailing payload bytes do not change the result.
      auto longer = bytes;
      longer.resize(bytes.size() + 20, 0xAB);
      ws::FrameHeader h2;
      REQUIRE(ws::parse_frame_header(longer.data(), longer.size(), h2) == ws::HeaderStatus::Ok);
      CHECK(h2.header_length == h.header_length);
      CHECK(h2.payload_length == h.payload_length);
    }
  }
}

TEST_CASE("parse_frame_header: flags, rsv bits and raw opcodes") {
  const auto bytes = encode_header(false, 0b101, 0xB, 3, nullptr);
  ws::FrameHeader h;
  REQUIRE(ws::parse_frame_header(bytes.data(), bytes.size(), h) == ws::HeaderStatus::Ok);
  CHECK_FALSE(h.fin);
  CHECK(h.rsv == 0b101);
  CHECK(h.opcode == 0xB);  // reserved opcodes are reported raw; the validator rejects them
  CHECK(h.is_control());
}

TEST_CASE("parse_frame_header: every prefix of a header needs more") {
  const uint64_t lengths[] = {0, 125, 126, 65535, 65536, uint64_t{1} << 32};
  for (int masked = 0; masked < 2; ++masked) {
    for (uint64_t len : lengths) {
      const auto bytes = encode_header(true, 0, kText, len, masked ? kMask : nullptr);
      for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(len);
        CAPTURE(n);
        ws::FrameHeader h;
        h.payload_length = 777;
        CHECK(ws::parse_frame_header(bytes.data(), n, h) == ws::HeaderStatus::NeedMore);
        CHECK(h.payload_length == 777);  // out untouched until Ok
      }
    }
  }
}

TEST_CASE("parse_frame_header: non-minimal lengths and the 64-bit top bit are malformed") {
  ws::FrameHeader h;
  SUBCASE("16-bit form for a length < 126") {
    for (uint16_t len : {0, 1, 125}) {
      const uint8_t b[] = {0x82, 126, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
      CHECK(ws::parse_frame_header(b, sizeof b, h) == ws::HeaderStatus::Malformed);
    }
    const uint8_t ok[] = {0x82, 126, 0, 126};
    CHECK(ws::parse_frame_header(ok, sizeof ok, h) == ws::HeaderStatus::Ok);
  }
  SUBCASE("64-bit form for a length <= 65535") {
    for (uint64_t len : {uint64_t{0}, uint64_t{125}, uint64_t{126}, uint64_t{65535}}) {
      uint8_t b[10] = {0x82, 127};
      for (int i = 0; i < 8; ++i) b[2 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
      CHECK(ws::parse_frame_header(b, sizeof b, h) == ws::HeaderStatus::Malformed);
    }
  }
  SUBCASE("64-bit length with the most significant bit set") {
    const uint8_t b[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    CHECK(ws::parse_frame_header(b, sizeof b, h) == ws::HeaderStatus::Malformed);
    const uint8_t all[] = {0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
    CHECK(ws::parse_frame_header(all, sizeof all, h) == ws::HeaderStatus::Malformed);
    const uint8_t max[] = {0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    REQUIRE(ws::parse_frame_header(max, sizeof max, h) == ws::HeaderStatus::Ok);
    CHECK(h.payload_length == 0x7FFFFFFFFFFFFFFFull);
  }
}

TEST_CASE("parse_frame_header: random splits of a frame stream match a whole-buffer parse") {
  std::mt19937_64 rng(12345);
  std::vector<uint8_t> stream;
  std::vector<ws::FrameHeader> expected;
  auto pick_len = [&]() -> uint64_t {
    switch (rng() % 6) {
      case 0:
        return 0;
      case 1:
        return 125 + rng() % 3;  // 125..127 around the 7-bit boundary
      case 2:
        return 65534 + rng() % 4;  // around the 16-bit boundary
      default:
        return rng() % 300;
    }
  };
  for (int i = 0; i < 400; ++i) {
    const uint64_t len = pick_len();
    uint8_t mask[4];
    for (auto& m : mask) m = static_cast<uint8_t>(rng());
    const bool masked = rng() % 2 == 0;
    const auto hdr = encode_header(rng() % 2 == 0, static_cast<uint8_t>(rng() % 8),
                                   static_cast<uint8_t>(rng() % 16), len, masked ? mask : nullptr);
    stream.insert(stream.end(), hdr.begin(), hdr.end());
    for (uint64_t j = 0; j < len; ++j) stream.push_back(static_cast<uint8_t>(rng()));
  }

  // Whole-buffer parse.
  for (std::size_t off = 0; off < stream.size();) {
    ws::FrameHeader h;
    REQUIRE(ws::parse_frame_header(stream.data() + off, stream.size() - off, h) ==
            ws::HeaderStatus::Ok);
    expected.push_back(h);
    off += h.header_length + h.payload_length;
  }
  REQUIRE(expected.size() == 400);

  for (int round = 0; round < 20; ++round) {
    std::vector<ws::FrameHeader> got;
    uint8_t pending[ws::kMaxHeaderSize];
    std::size_t pending_len = 0;
    uint64_t skip = 0;  // payload bytes of the current frame still to pass over
    std::size_t off = 0;
    while (off < stream.size()) {
      std::size_t chunk = 1 + rng() % (round % 2 == 0 ? 7 : 200);
      chunk = std::min(chunk, stream.size() - off);
      const uint8_t* p = stream.data() + off;
      off += chunk;
      while (chunk > 0) {
        if (skip > 0) {
          const auto take = static_cast<std::size_t>(std::min<uint64_t>(skip, chunk));
          skip -= take;
          p += take;
          chunk -= take;
          continue;
        }
        // Accumulate header bytes until the parser says Ok; keep only what the header uses.
        const std::size_t take = std::min(chunk, ws::kMaxHeaderSize - pending_len);
        std::memcpy(pending + pending_len, p, take);
        ws::FrameHeader h;
        const auto st = ws::parse_frame_header(pending, pending_len + take, h);
        REQUIRE(st != ws::HeaderStatus::Malformed);
        if (st == ws::HeaderStatus::NeedMore) {
          pending_len += take;
          p += take;
          chunk -= take;
          continue;
        }
        const std::size_t used = h.header_length - pending_len;  // bytes of this chunk
        got.push_back(h);
        pending_len = 0;
        skip = h.payload_length;
        p += used;
        chunk -= used;
      }
    }
    CHECK(pending_len == 0);
    CHECK(skip == 0);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].fin == expected[i].fin);
      CHECK(got[i].rsv == expected[i].rsv);
      CHECK(got[i].opcode == expected[i].opcode);
      CHECK(got[i].masked == expected[i].masked);
      CHECK(got[i].mask == expected[i].mask);
      CHECK(got[i].payload_length == expected[i].payload_length);
      CHECK(got[i].header_length == expected[i].header_length);
    }
  }
}

TEST_CASE("FrameValidator: masking rules per direction") {
  ws::FrameValidator c2s(client_rules());
  CHECK(c2s.check(header(kText, true, 5, true)) == 0);
  CHECK(c2s.check(header(kText, true, 5, false)) == 1002);
  CHECK_FALSE(c2s.last_error().empty());

  ws::FrameRules r;
  r.direction = ws::Direction::ServerToClient;
  ws::FrameValidator s2c(r);
  CHECK(s2c.check(header(kText, true, 5, false)) == 0);
  CHECK(s2c.check(header(kPing, true, 0, true)) == 1002);
}

TEST_CASE("FrameValidator: reserved opcodes") {
  for (uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    CAPTURE(int{op});
    ws::FrameValidator v(client_rules());
    CHECK(v.check(header(op, true, 0, true)) == 1002);
  }
  for (uint8_t op : {kText, kBin, kClose, kPing, kPong}) {
    ws::FrameValidator v(client_rules());
    CHECK(v.check(header(op, true, 0, true)) == 0);
  }
}

TEST_CASE("FrameValidator: RSV bits") {
  SUBCASE("RSV1 without an extension") {
    ws::FrameValidator v(client_rules());
    CHECK(v.check(header(kText, true, 1, true, 0b100)) == 1002);
  }
  SUBCASE("RSV1 with permessage-deflate") {
    ws::FrameValidator v(client_rules(0, true));
    CHECK(v.check(header(kText, true, 1, true, 0b100)) == 0);
    CHECK(v.check(header(kBin, false, 1, true, 0b100)) == 0);
    CHECK(v.check(header(kCont, true, 1, true, 0b000)) == 0);
    // RFC 7692 6.1: never on control frames or continuation frames.
    CHECK(ws::FrameValidator(client_rules(0, true)).check(header(kPing, true, 0, true, 0b100)) ==
          1002);
    CHECK(v.check(header(kBin, false, 1, true, 0b100)) == 0);
    CHECK(v.check(header(kCont, true, 1, true, 0b100)) == 1002);
  }
  SUBCASE("RSV2 and RSV3 always rejected") {
    for (bool allowed : {false, true}) {
      for (uint8_t rsv : {0b010, 0b001, 0b110, 0b111}) {
        ws::FrameValidator v(client_rules(0, allowed));
        CHECK(v.check(header(kText, true, 1, true, rsv)) == 1002);
      }
    }
  }
}

TEST_CASE("FrameValidator: control frame rules") {
  ws::FrameValidator v(client_rules());
  CHECK(v.check(header(kPing, true, 125, true)) == 0);
  CHECK(v.check(header(kPing, true, 126, true)) == 1002);
  CHECK(ws::FrameValidator(client_rules()).check(header(kClose, true, 65536, true)) == 1002);
  CHECK(ws::FrameValidator(client_rules()).check(header(kPong, false, 0, true)) == 1002);
}

TEST_CASE("FrameValidator: fragmentation") {
  SUBCASE("continuation without an open message") {
    ws::FrameValidator v(client_rules());
    CHECK(v.check(header(kCont, true, 1, true)) == 1002);
    ws::FrameValidator v2(client_rules());
    CHECK(v2.check(header(kText, true, 1, true)) == 0);
    CHECK(v2.check(header(kCont, false, 1, true)) == 1002);
  }
  SUBCASE("new data message while one is open") {
    ws::FrameValidator v(client_rules());
    CHECK(v.check(header(kText, false, 1, true)) == 0);
    CHECK(v.in_fragmented_message());
    CHECK(v.check(header(kText, true, 1, true)) == 1002);
    ws::FrameValidator v2(client_rules());
    CHECK(v2.check(header(kText, false, 1, true)) == 0);
    CHECK(v2.check(header(kBin, false, 1, true)) == 1002);
  }
  SUBCASE("control frames interleaved in a fragmented message") {
    ws::FrameValidator v(client_rules());
    CHECK(v.check(header(kText, false, 3, true)) == 0);
    CHECK(v.check(header(kPing, true, 4, true)) == 0);
    CHECK(v.check(header(kCont, false, 3, true)) == 0);
    CHECK(v.check(header(kPong, true, 0, true)) == 0);
    CHECK(v.in_fragmented_message());
    CHECK(v.check(header(kCont, true, 3, true)) == 0);
    CHECK_FALSE(v.in_fragmented_message());
    CHECK(v.check(header(kBin, true, 3, true)) == 0);
  }
}

TEST_CASE("FrameValidator: max_message_size") {
  SUBCASE("across fragments") {
    ws::FrameValidator v(client_rules(100));
    CHECK(v.check(header(kText, false, 40, true)) == 0);
    CHECK(v.check(header(kCont, false, 40, true)) == 0);
    CHECK(v.check(header(kCont, true, 21, true)) == 1009);
    CHECK_FALSE(v.last_error().empty());
  }
  SUBCASE("exactly at the limit passes, and the count restarts per message") {
    ws::FrameValidator w(client_rules(100));
    CHECK(w.check(header(kBin, false, 40, true)) == 0);
    CHECK(w.check(header(kPing, true, 100, true)) == 0);  // control frames don't count
    CHECK(w.check(header(kCont, false, 40, true)) == 0);
    CHECK(w.check(header(kCont, true, 20, true)) == 0);
    CHECK(w.check(header(kBin, true, 100, true)) == 0);
    CHECK(w.check(header(kBin, true, 101, true)) == 1009);
  }
  SUBCASE("huge lengths do not overflow the sum") {
    ws::FrameValidator v(client_rules(100));
    CHECK(v.check(header(kBin, false, 50, true)) == 0);
    CHECK(v.check(header(kCont, true, ~uint64_t{0} - 10, true)) == 1009);
  }
  SUBCASE("0 means no limit") {
    ws::FrameValidator v(client_rules(0));
    CHECK(v.check(header(kBin, false, uint64_t{1} << 40, true)) == 0);
    CHECK(v.check(header(kCont, true, uint64_t{1} << 40, true)) == 0);
  }
}

TEST_CASE("parse_close_payload") {
  SUBCASE("empty -> 1005, valid") {
    const auto c = ws::parse_close_payload(nullptr, 0, nullptr);
    CHECK(c.code == 1005);
    CHECK(c.valid);
  }
  SUBCASE("one byte -> invalid") {
    const uint8_t b[1] = {0x03};
    CHECK_FALSE(ws::parse_close_payload(b, 1, nullptr).valid);
  }
  SUBCASE("codes allowed on the wire") {
    for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4001, 4999}) {
      CAPTURE(code);
      const auto c = close_of(code);
      CHECK(c.valid);
      CHECK(c.code == code);
    }
  }
  SUBCASE("codes never allowed on the wire") {
    for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
      CAPTURE(code);
      const auto c = close_of(code);
      CHECK_FALSE(c.valid);
      CHECK(c.code == code);
    }
  }
  SUBCASE("masked payload with a reason") {
    uint8_t b[] = {0x0F, 0xA1, 'b', 'y', 'e'};  // 4001 "bye"
    ws::apply_mask(b, sizeof b, kMask, 0);
    const auto c = ws::parse_close_payload(b, sizeof b, kMask);
    CHECK(c.valid);
    CHECK(c.code == 4001);
    const auto masked_invalid = close_of(1006, kMask);
    CHECK_FALSE(masked_invalid.valid);
    CHECK(masked_invalid.code == 1006);
  }
}

TEST_CASE("build_close_frame round-trips") {
  for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), kMask}) {
    CAPTURE(mask != nullptr);
    uint8_t out[ws::kMaxHeaderSize + ws::kMaxControlPayload];
    const std::size_t n = ws::build_close_frame(out, 1001, "going away", mask);
    ws::FrameHeader h;
    REQUIRE(ws::parse_frame_header(out, n, h) == ws::HeaderStatus::Ok);
    CHECK(h.fin);
    CHECK(h.opcode == kClose);
    CHECK(h.masked == (mask != nullptr));
    CHECK(h.payload_length == 12);
    CHECK(n == h.header_length + h.payload_length);
    const auto c = ws::parse_close_payload(out + h.header_length, h.payload_length,
                                           h.masked ? h.mask.data() : nullptr);
    CHECK(c.valid);
    CHECK(c.code == 1001);
    if (h.masked) ws::apply_mask(out + h.header_length, h.payload_length, h.mask.data(), 0);
    CHECK(std::string(reinterpret_cast<const char*>(out + h.header_length + 2), 10) ==
          "going away");

    // The validator accepts what a client (masked) or server (unmasked) sends.
    ws::FrameRules r;
    r.direction = mask != nullptr ? ws::Direction::ClientToServer : ws::Direction::ServerToClient;
    CHECK(ws::FrameValidator(r).check(h) == 0);
  }
}

TEST_CASE("build_close_frame truncates the reason to fit 125 bytes") {
  for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), kMask}) {
    const std::string reason(300, 'r');
    uint8_t out[ws::kMaxHeaderSize + ws::kMaxControlPayload];
    const std::size_t n = ws::build_close_frame(out, 1009, reason, mask);
    ws::FrameHeader h;
    REQUIRE(ws::parse_frame_header(out, n, h) == ws::HeaderStatus::Ok);
    CHECK(h.payload_length == 125);
    CHECK(n == h.header_length + 125u);
    const auto c = ws::parse_close_payload(out + h.header_length, h.payload_length,
                                           h.masked ? h.mask.data() : nullptr);
    CHECK(c.valid);
    CHECK(c.code == 1009);
  }
  SUBCASE("the cut does not split a UTF-8 sequence") {
    std::string reason(122, 'x');
    reason += "\xC3\xA9\xC3\xA9";  // "éé": the first one straddles byte 123
    uint8_t out[ws::kMaxHeaderSize + ws::kMaxControlPayload];
    const std::size_t n = ws::build_close_frame(out, 1000, reason, nullptr);
    CHECK(n == 2 + 2 + 122u);
    CHECK(out[1] == 124);
  }
  SUBCASE("1005 (no status) builds an empty close body") {
    uint8_t out[ws::kMaxHeaderSize + ws::kMaxControlPayload];
    CHECK(ws::build_close_frame(out, 1005, "ignored", nullptr) == 2u);
    CHECK(out[0] == 0x88);
    CHECK(out[1] == 0x00);
  }
}

TEST_CASE("apply_mask matches a byte-by-byte reference") {
  std::mt19937 rng(7);
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      for (std::size_t align = 0; align < 3; ++align) {  // odd start addresses
        uint8_t mask[4];
        for (auto& m : mask) m = static_cast<uint8_t>(rng());
        uint8_t buf[64];
        for (auto& b : buf) b = static_cast<uint8_t>(rng());
        uint8_t ref[64];
        std::memcpy(ref, buf, sizeof buf);
        for (std::size_t i = 0; i < len; ++i) ref[align + i] ^= mask[(offset + i) % 4];
        ws::apply_mask(buf + align, len, mask, offset);
        CAPTURE(len);
        CAPTURE(offset);
        CAPTURE(align);
        CHECK(std::memcmp(buf, ref, sizeof buf) == 0);  // bytes outside untouched too
      }
    }
  }
}

TEST_CASE("apply_mask in pieces equals one pass") {
  std::vector<uint8_t> a(1000), b;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 7);
  b = a;
  ws::apply_mask(a.data(), a.size(), kMask, 0);
  std::size_t pos = 0;
  for (std::size_t piece : {1, 3, 8, 13, 64, 5, 200, 706}) {
    ws::apply_mask(b.data() + pos, piece, kMask, pos);
    pos += piece;
  }
  REQUIRE(pos == b.size());
  CHECK(a == b);
}
