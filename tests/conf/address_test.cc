#include "conf/address.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

using namespace wsgate;

namespace {

sockaddr_in v4(uint32_t host_order, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(host_order);
  a.sin_port = htons(port);
  return a;
}

}  // namespace

TEST_CASE("describe: IPv4 addresses as inet_ntop writes them, with the port") {
  // Every octet value in every position, and the edges of each.
  for (uint32_t octet = 0; octet < 256; ++octet) {
    for (const uint32_t ip : {octet << 24, octet << 16, octet << 8, octet,
                              (octet << 24) | 0x00ff00ffu, 0xffffffffu ^ octet}) {
      const sockaddr_in a = v4(ip, static_cast<uint16_t>(octet * 257));
      char want[INET_ADDRSTRLEN];
      REQUIRE(inet_ntop(AF_INET, &a.sin_addr, want, sizeof(want)) != nullptr);
      const conf::SocketAddressText t = conf::describe(reinterpret_cast<const sockaddr*>(&a));
      CHECK(t.ip == want);
      CHECK(t.port == octet * 257);
      CHECK(t.ip_port == std::string(want) + ":" + std::to_string(octet * 257));
    }
  }
}

TEST_CASE("describe: IPv6 in brackets, other families as ?") {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  a.sin6_port = htons(8443);
  const conf::SocketAddressText t = conf::describe(reinterpret_cast<const sockaddr*>(&a));
  CHECK(t.ip == "::1");
  CHECK(t.ip_port == "[::1]:8443");
  sockaddr other{};
  other.sa_family = AF_UNIX;
  CHECK(conf::describe(&other).ip_port == "?");
}

TEST_CASE("to_sockaddr: IP literals only") {
  sockaddr_storage ss{};
  socklen_t len = 0;
  REQUIRE(conf::to_sockaddr({"127.0.0.1", 8080}, ss, len));
  CHECK(len == sizeof(sockaddr_in));
  CHECK(conf::describe(reinterpret_cast<const sockaddr*>(&ss)).ip_port == "127.0.0.1:8080");
  REQUIRE(conf::to_sockaddr({"::1", 443}, ss, len));
  CHECK(len == sizeof(sockaddr_in6));
  CHECK(conf::describe(reinterpret_cast<const sockaddr*>(&ss)).ip_port == "[::1]:443");
  CHECK_FALSE(conf::to_sockaddr({"example.com", 80}, ss, len));
  CHECK_FALSE(conf::to_sockaddr({"fe80::1%eth0", 80}, ss, len));  // scoped: through the resolver
}

TEST_CASE("format_host_port: IPv6 hosts in brackets, every port width") {
  CHECK(conf::format_host_port("127.0.0.1", 39301) == "127.0.0.1:39301");
  CHECK(conf::format_host_port("backend.internal", 0) == "backend.internal:0");
  CHECK(conf::format_host_port("::1", 65535) == "[::1]:65535");
  CHECK(conf::format_host_port("fe80::1", 8) == "[fe80::1]:8");
  CHECK(conf::format_host_port("", 80) == ":80");
}
