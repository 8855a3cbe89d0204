// PROXY headers wsgate writes, read back by the parser that reads what balancers send.
#include "proxy/codec/proxy_protocol_writer.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <string>

namespace pp = wsgate::proxy_protocol;

namespace {

using namespace std::string_literals;

std::string ip_of(const pp::Endpoint& e) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.family == pp::Endpoint::Family::Inet ? AF_INET : AF_INET6, e.address.data(), text,
            sizeof(text));
  return text;
}

pp::Header round_trip(const std::string& bytes) {
  const pp::Result r = pp::parse(bytes + "GET / HTTP/1.1\r\n");
  REQUIRE(r.state == pp::State::Done);
  CHECK(r.length == bytes.size());
  return r.header;
}

}  // namespace

TEST_CASE("proxy protocol writer: v1 and v2 round-trip through the parser, IPv4 and IPv6") {
  const auto v4_src = *pp::endpoint("203.0.113.9", 51000);
  const auto v4_dst = *pp::endpoint("10.0.0.2", 9001);
  const auto v6_src = *pp::endpoint("2001:db8::7", 443);
  const auto v6_dst = *pp::endpoint("fd00::1", 80);
  for (pp::Version v : {pp::Version::V1, pp::Version::V2}) {
    CAPTURE(pp::to_string(v));
    pp::Header h = round_trip(pp::encode(v, v4_src, v4_dst));
    CHECK(h.version == v);
    CHECK(h.has_addresses);
    CHECK(h.source.family == pp::Endpoint::Family::Inet);
    CHECK(ip_of(h.source) == "203.0.113.9");
    CHECK(h.source.port == 51000);
    CHECK(ip_of(h.destination) == "10.0.0.2");
    CHECK(h.destination.port == 9001);

    h = round_trip(pp::encode(v, v6_src, v6_dst));
    CHECK(h.source.family == pp::Endpoint::Family::Inet6);
    CHECK(ip_of(h.source) == "2001:db8::7");
    CHECK(h.source.port == 443);
    CHECK(ip_of(h.destination) == "fd00::1");
    CHECK(h.destination.port == 80);

    // Mixed families: both as IPv6, the IPv4 one mapped (RFC 4291 2.5.5.2).
    h = round_trip(pp::encode(v, v4_src, v6_dst));
    CHECK(h.source.family == pp::Endpoint::Family::Inet6);
    CHECK(ip_of(h.source) == "::ffff:203.0.113.9");
    CHECK(ip_of(h.destination) == "fd00::1");
  }
}

TEST_CASE("proxy protocol writer: the exact bytes of spec examples") {
  const auto src = *pp::endpoint("192.168.0.1", 56324);
  const auto dst = *pp::endpoint("192.168.0.11", 443);
  CHECK(pp::encode(pp::Version::V1, src, dst) ==
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  const std::string v2 = pp::encode(pp::Version::V2, src, dst);
  CHECK(v2 ==
        "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"s
        "\xc0\xa8\x00\x01\xc0\xa8\x00\x0b\xdc\x04\x01\xbb"s);
  // The longest v1 line fits the spec's 107 bytes.
  const auto big = *pp::endpoint("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
  CHECK(pp::encode(pp::Version::V1, big, big).size() <= pp::kMaxV1Length);
}

TEST_CASE("proxy protocol writer: LOCAL and UNKNOWN keep the connection's addresses") {
  CHECK(pp::encode_local(pp::Version::V1) == "PROXY UNKNOWN\r\n");
  CHECK(pp::encode_local(pp::Version::V2) == "\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"s);
  for (pp::Version v : {pp::Version::V1, pp::Version::V2}) {
    const pp::Header h = round_trip(pp::encode_local(v));
    CHECK_FALSE(h.has_addresses);
    // An endpoint that is not an address: the same header as encode_local.
    CHECK(pp::encode(v, pp::Endpoint{}, *pp::endpoint("10.0.0.1", 1)) == pp::encode_local(v));
  }
  CHECK_FALSE(pp::endpoint("not-an-ip", 1));
  CHECK_FALSE(pp::endpoint("10.0.0.1:80", 1));
}
