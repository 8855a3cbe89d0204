#include "proxy/codec/proxy_protocol.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pp = wsgate::proxy_protocol;

namespace {

using namespace std::string_literals;

const std::string kSig = "\r\n\r\n\0\r\nQUIT\n"s;

std::string ip_of(const pp::Endpoint& e) {
  char text[INET6_ADDRSTRLEN] = {};
  if (e.family == pp::Endpoint::Family::Inet)
    inet_ntop(AF_INET, e.address.data(), text, sizeof(text));
  else if (e.family == pp::Endpoint::Family::Inet6)
    inet_ntop(AF_INET6, e.address.data(), text, sizeof(text));
  return text;
}

int port_of(const pp::Endpoint& e) {
  return e.family == pp::Endpoint::Family::Unspecified ? -1 : e.port;
}

std::string u16(std::size_t n) {
  return {static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
}

std::string tlv(uint8_t type, const std::string& value) {
  return std::string(1, static_cast<char>(type)) + u16(value.size()) + value;
}

// A v2 header: version/command byte, family/transport byte, then `body`.
std::string v2(uint8_t ver_cmd, uint8_t fam, const std::string& body) {
  return kSig + std::string(1, static_cast<char>(ver_cmd)) +
         std::string(1, static_cast<char>(fam)) + u16(body.size()) + body;
}

std::string v2_tcp4_body() {
  // 192.0.2.7:51000 -> 198.51.100.1:443
  return "\xc0\x00\x02\x07"s + "\xc6\x33\x64\x01"s + u16(51000) + u16(443);
}

std::string v2_tcp6_body() {
  std::string src(16, '\0'), dst(16, '\0');
  src[0] = '\x20';
  src[1] = '\x01';
  src[2] = '\x0d';
  src[3] = '\xb8';
  src[15] = '\x07';
  dst[15] = '\x01';
  return src + dst + u16(40000) + u16(8443);  // 2001:db8::7:40000 -> ::1:8443
}

// Every prefix shorter than the header needs more; from the whole header on, with any
// client bytes behind it, the verdict is the same Done (the reader takes NeedMore bytes
// off the socket, so they must all be the header's).
void check_every_split(const std::string& header, const std::string& client_bytes) {
  const std::string all = header + client_bytes;
  const pp::Result whole = pp::parse(all);
  REQUIRE(whole.state == pp::State::Done);
  CHECK(whole.length == header.size());
  for (std::size_t k = 0; k < header.size(); ++k) {
    CAPTURE(k);
    CHECK(pp::parse(std::string_view(all).substr(0, k)).state == pp::State::NeedMore);
  }
  for (std::size_t k = header.size(); k <= all.size(); ++k) {
    CAPTURE(k);
    const pp::Result r = pp::parse(std::string_view(all).substr(0, k));
    CHECK(r.state == pp::State::Done);
    CHECK(r.length == header.size());
    CHECK(r.header.has_addresses == whole.header.has_addresses);
    CHECK(ip_of(r.header.source) == ip_of(whole.header.source));
  }
}

// A bad header is refused once the bytes that break it are in, and never before a
// prefix of it could still be good; more bytes do not undo the refusal.
void check_refused(const std::string& bytes) {
  CAPTURE(bytes);
  const pp::Result r = pp::parse(bytes);
  CHECK(r.state == pp::State::Error);
  CHECK(!r.error.empty());
  CHECK(r.error.find('\n') == std::string::npos);
  bool refused = false;
  for (std::size_t k = 0; k <= bytes.size(); ++k) {
    const pp::State s = pp::parse(std::string_view(bytes).substr(0, k)).state;
    CHECK(s != pp::State::Done);
    if (refused) CHECK(s == pp::State::Error);
    refused = s == pp::State::Error;
  }
  CHECK(pp::parse(bytes + "GET / HTTP/1.1\r\n").state == pp::State::Error);
}

}  // namespace

TEST_CASE("proxy protocol v1: TCP4 at every byte split") {
  const std::string h = "PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n";
  check_every_split(h, "GET /echo HTTP/1.1\r\n");
  const pp::Result r = pp::parse(h);
  CHECK(r.header.version == pp::Version::V1);
  CHECK(r.header.has_addresses);
  CHECK(r.header.source.family == pp::Endpoint::Family::Inet);
  CHECK(ip_of(r.header.source) == "192.0.2.7");
  CHECK(port_of(r.header.source) == 51000);
  CHECK(ip_of(r.header.destination) == "198.51.100.1");
  CHECK(port_of(r.header.destination) == 443);
}

TEST_CASE("proxy protocol v1: TCP6 at every byte split, TLS bytes behind") {
  const std::string h = "PROXY TCP6 2001:db8::7 ::1 40000 8443\r\n";
  check_every_split(h, "\x16\x03\x01\x02\x00\x01"s);
  const pp::Result r = pp::parse(h);
  CHECK(r.header.source.family == pp::Endpoint::Family::Inet6);
  CHECK(ip_of(r.header.source) == "2001:db8::7");
  CHECK(port_of(r.header.source) == 40000);
  CHECK(port_of(r.header.destination) == 8443);
}

TEST_CASE("proxy protocol v1: UNKNOWN keeps the connection's addresses") {
  check_every_split("PROXY UNKNOWN\r\n", "GET");
  check_every_split("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n", "");
  CHECK_FALSE(pp::parse("PROXY UNKNOWN\r\n").header.has_addresses);
}

TEST_CASE("proxy protocol v1: the longest header, 107 bytes") {
  // Spec 2.1's worst case; TCP6 with the longest addresses is 3 bytes shorter.
  const std::string h =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "65535 65535\r\n";
  REQUIRE(h.size() == pp::kMaxV1Length);
  check_every_split(h, "x");
}

TEST_CASE("proxy protocol v1: bad headers are refused") {
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\n");      // LF without CR
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\r\n");  // stray CR
  check_refused("PROXY TCP4 192.0.2.7  198.51.100.1 51000 443\r\n");   // two spaces
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 51000\r\n");        // a port missing
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443 1\r\n");  // a field too many
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n");    // port out of range
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 051000 443\r\n");   // leading zero
  check_refused("PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n");
  check_refused("PROXY TCP4 2001:db8::7 198.51.100.1 1 443\r\n");  // v6 address in TCP4
  check_refused("PROXY TCP6 192.0.2.7 ::1 1 443\r\n");             // v4 address in TCP6
  check_refused("PROXY TCP4 192.0.2.256 198.51.100.1 1 443\r\n");
  check_refused("PROXY UDP4 192.0.2.7 198.51.100.1 1 443\r\n");  // unknown protocol
  check_refused("PROXY tcp4 192.0.2.7 198.51.100.1 1 443\r\n");
  check_refused("PROXY \r\n");
  check_refused("PROXYTCP4 192.0.2.7 198.51.100.1 1 443\r\n");
  check_refused("PROXY UNKNOWN" + std::string(100, ' '));  // no CRLF within 107 bytes
  check_refused("GET / HTTP/1.1\r\n");                     // no header at all
  check_refused("\x16\x03\x01\x02\x00"s);                  // a TLS ClientHello
  check_refused("P\r\n");
}

TEST_CASE("proxy protocol v2: PROXY TCP4 at every byte split") {
  const std::string h = v2(0x21, 0x11, v2_tcp4_body());
  check_every_split(h, "GET /echo HTTP/1.1\r\n");
  const pp::Result r = pp::parse(h);
  CHECK(r.header.version == pp::Version::V2);
  CHECK(r.header.has_addresses);
  CHECK(ip_of(r.header.source) == "192.0.2.7");
  CHECK(port_of(r.header.source) == 51000);
  CHECK(ip_of(r.header.destination) == "198.51.100.1");
  CHECK(port_of(r.header.destination) == 443);
}

TEST_CASE("proxy protocol v2: PROXY TCP6 with TLVs at every byte split") {
  const std::string ssl = "\x01"s + "\0\0\0\0"s + tlv(0x21, "TLSv1.3") + tlv(0x22, "cn");
  const std::string body = v2_tcp6_body() + tlv(0x01, "h2") + tlv(0x02, "ws.example.com") +
                           tlv(0x20, ssl) + tlv(0x04, "\0\0\0\0"s) + tlv(0x05, "");
  const std::string h = v2(0x21, 0x21, body);
  check_every_split(h, "\x16\x03\x01"s);
  const pp::Result r = pp::parse(h);
  CHECK(ip_of(r.header.source) == "2001:db8::7");
  CHECK(port_of(r.header.source) == 40000);
  CHECK(ip_of(r.header.destination) == "::1");
  CHECK(r.header.alpn == "h2");
  CHECK(r.header.authority == "ws.example.com");
  CHECK(r.header.ssl);
  CHECK(r.header.ssl_version == "TLSv1.3");
}

TEST_CASE("proxy protocol v2: LOCAL and UNSPEC keep the connection's addresses") {
  check_every_split(v2(0x20, 0x00, ""), "GET");
  // LOCAL may still carry addresses and TLVs: they are ignored (spec 2.2).
  check_every_split(v2(0x20, 0x11, v2_tcp4_body() + tlv(0x02, "x")), "");
  CHECK_FALSE(pp::parse(v2(0x20, 0x11, v2_tcp4_body())).header.has_addresses);
  check_every_split(v2(0x21, 0x00, ""), "");
  CHECK_FALSE(pp::parse(v2(0x21, 0x00, "")).header.has_addresses);
}

TEST_CASE("proxy protocol v2: TLVs that are not printable text are not kept") {
  const pp::Result r =
      pp::parse(v2(0x21, 0x11, v2_tcp4_body() + tlv(0x02, "a\nb") + tlv(0x01, "")));
  REQUIRE(r.state == pp::State::Done);
  CHECK(r.header.authority.empty());
  CHECK(r.header.alpn.empty());
}

TEST_CASE("proxy protocol v2: bad headers are refused") {
  check_refused(v2(0x11, 0x11, v2_tcp4_body()));                     // version 1 in a v2 header
  check_refused(v2(0x22, 0x11, v2_tcp4_body()));                     // command 2
  check_refused(v2(0x21, 0x12, v2_tcp4_body()));                     // UDP
  check_refused(v2(0x21, 0x31, std::string(216, 'a')));              // unix socket
  check_refused(v2(0x21, 0x41, v2_tcp4_body()));                     // undefined family
  check_refused(v2(0x21, 0x11, v2_tcp4_body().substr(0, 11)));       // addresses cut
  check_refused(v2(0x21, 0x21, v2_tcp6_body().substr(0, 35)));       // addresses cut
  check_refused(v2(0x21, 0x11, v2_tcp4_body() + "\x02\x00"s));       // TLV header cut
  check_refused(v2(0x21, 0x11, v2_tcp4_body() + "\x02\x00\x05x"s));  // TLV overruns
  check_refused(kSig.substr(0, 11) + "X");                           // signature broken
  check_refused("\r\n\r\n\r\n");
  // Longer than we take: refused from the fixed part, before the rest arrives.
  const std::string huge = kSig + "\x21\x11"s + u16(pp::kMaxLength);
  CHECK(pp::parse(huge).state == pp::State::Error);
}
