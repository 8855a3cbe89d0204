// PROXY protocol v1/v2 headers (proxy/codec/proxy_protocol.h): the first bytes of every
// connection on a listener with proxy_protocol = true, sent by whoever connects from an
// allowed address. Properties: the first decision on a prefix is final (a NeedMore prefix
// never holds a complete header, since the reader takes those bytes off the socket);
// a header is never longer than the input or the limits; an error is one line; a header
// with addresses has an IPv4 or IPv6 source and destination of one family.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/codec/proxy_protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace pp = wsgate::proxy_protocol;
using wsgate::fuzz::is_one_line;

namespace {

void check_result(const pp::Result& r, std::string_view input) {
  switch (r.state) {
    case pp::State::NeedMore:
      FUZZ_CHECK(input.size() < pp::kMaxLength + 16);
      break;
    case pp::State::Error:
      FUZZ_CHECK(!r.error.empty());
      FUZZ_CHECK(is_one_line(r.error));
      break;
    case pp::State::Done:
      FUZZ_CHECK(r.length > 0 && r.length <= input.size());
      FUZZ_CHECK(r.length <= pp::kMaxLength);
      if (r.header.version == pp::Version::V1) FUZZ_CHECK(r.length <= pp::kMaxV1Length);
      if (r.header.has_addresses) {
        const auto family = r.header.source.family;
        FUZZ_CHECK(family != pp::Endpoint::Family::Unspecified);
        FUZZ_CHECK(r.header.destination.family == family);
      }
      for (char c : r.header.authority) FUZZ_CHECK(c > 0x20 && c < 0x7f);
      for (char c : r.header.alpn) FUZZ_CHECK(c > 0x20 && c < 0x7f);
      break;
  }
}

bool same(const pp::Result& a, const pp::Result& b) {
  return a.state == b.state && a.length == b.length && a.error == b.error &&
         a.header.has_addresses == b.header.has_addresses &&
         a.header.authority == b.header.authority && a.header.alpn == b.header.alpn;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const pp::Result whole = pp::parse(input);
  check_result(whole, input);
  // Byte by byte, as the slowest peer would send it: the first decision is the decision.
  bool decided = false;
  for (std::size_t k = 0; k <= size && !decided; ++k) {
    const pp::Result r = pp::parse(input.substr(0, k));
    check_result(r, input.substr(0, k));
    if (r.state == pp::State::NeedMore) {
      // Every byte of a NeedMore prefix belongs to the header, if one comes.
      if (whole.state == pp::State::Done) FUZZ_CHECK(whole.length > k);
      continue;
    }
    decided = true;
    FUZZ_CHECK(same(r, whole));
  }
  return 0;
}
