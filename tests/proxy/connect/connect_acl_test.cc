// The CONNECT allow-list (proxy/connect/connect_acl.cc): authority parsing, matching, special
// ranges.
#include "proxy/connect/connect_acl.h"

#include <doctest/doctest.h>

#include <netinet/in.h>

#include "conf/config_connect.h"

using namespace wsgate;
using namespace wsgate::proxy::connect;

namespace {

conf::ConnectRule host_rule(std::string host, std::vector<conf::PortRange> ports) {
  conf::ConnectRule r;
  r.host = std::move(host);
  r.ports = std::move(ports);
  return r;
}

conf::ConnectRule cidr_rule(std::string_view cidr, std::vector<conf::PortRange> ports) {
  conf::ConnectRule r;
  r.network = conf::detail::parse_cidr(cidr);
  REQUIRE(r.network.has_value());
  r.ports = std::move(ports);
  return r;
}

Address addr(std::string_view text) {
  const auto a = parse_address(text);
  REQUIRE(a.has_value());
  return *a;
}

}  // namespace

TEST_CASE("connect authority: accepted forms (RFC 9112 3.2.3)") {
  auto a = parse_authority("Example.COM:443");
  REQUIRE(a.authority);
  CHECK(a.authority->host == "example.com");
  CHECK(a.authority->port == 443);
  CHECK_FALSE(a.authority->is_ip);
  a = parse_authority("10.0.0.1:8080");
  REQUIRE(a.authority);
  CHECK(a.authority->is_ip);
  a = parse_authority("[2001:DB8::1]:443");
  REQUIRE(a.authority);
  CHECK(a.authority->host == "2001:db8::1");
  CHECK(a.authority->is_ip);
  CHECK(parse_authority("localhost:1").authority);
  CHECK(parse_authority("a.b:65535").authority);
}

TEST_CASE("connect authority: refused forms") {
  for (const char* bad : {"example.com",
                          "example.com:",
                          ":443",
                          "example.com:0",
                          "example.com:65536",
                          "example.com:99999999999",
                          "user@example.com:443",
                          "user:pw@example.com:443",
                          "example.com:44a",
                          "2001:db8::1:443",
                          "[2001:db8::1]",
                          "[2001:db8::1:443",
                          "[zz]:443",
                          "exa mple.com:443",
                          "example..com:443",
                          "127.1:80",
                          "/path:80",
                          "-a.com:80",
                          "example.com:+80",
                          "[]:80"}) {
    INFO(bad);
    const auto r = parse_authority(bad);
    CHECK_FALSE(r.authority);
    CHECK(r.error.find("invalid CONNECT target") == 0);
  }
}

TEST_CASE("connect: host wildcard match") {
  CHECK(host_matches("*", "anything.example"));
  CHECK(host_matches("example.com", "example.com"));
  CHECK_FALSE(host_matches("example.com", "a.example.com"));
  CHECK(host_matches("*.example.com", "a.example.com"));
  CHECK(host_matches("*.example.com", "a.b.example.com"));
  CHECK_FALSE(host_matches("*.example.com", "example.com"));
  CHECK_FALSE(host_matches("*.example.com", "badexample.com"));
}

TEST_CASE("connect: networks v4 and v6, ports") {
  const auto n8 = conf::detail::parse_cidr("10.0.0.0/8");
  CHECK(network_contains(*n8, addr("10.255.1.2")));
  CHECK_FALSE(network_contains(*n8, addr("11.0.0.1")));
  const auto n12 = conf::detail::parse_cidr("172.16.0.0/12");
  CHECK(network_contains(*n12, addr("172.31.255.255")));
  CHECK_FALSE(network_contains(*n12, addr("172.32.0.0")));
  const auto n6 = conf::detail::parse_cidr("2001:db8::/32");
  CHECK(network_contains(*n6, addr("2001:db8:ffff::1")));
  CHECK_FALSE(network_contains(*n6, addr("2001:db9::1")));
  CHECK_FALSE(network_contains(*n6, addr("10.0.0.1")));
  const auto all = conf::detail::parse_cidr("0.0.0.0/0");
  CHECK(network_contains(*all, addr("8.8.8.8")));
  CHECK(port_allowed({{443, 443}, {8000, 8100}}, 8050));
  CHECK_FALSE(port_allowed({{443, 443}, {8000, 8100}}, 8101));
}

TEST_CASE("connect: special ranges, IPv4-mapped IPv6 unwrapped") {
  for (const char* special :
       {"127.0.0.1", "127.255.0.1", "0.0.0.0", "0.1.2.3", "10.1.1.1", "172.16.0.1", "192.168.1.1",
        "100.64.0.1", "169.254.169.254", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
    INFO(special);
    CHECK(special_range(addr(special)).has_value());
  }
  for (const char* pub :
       {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2001:4860::8888", "::ffff:8.8.8.8"}) {
    INFO(pub);
    CHECK_FALSE(special_range(addr(pub)).has_value());
  }
  CHECK(addr("::ffff:127.0.0.1").family == AF_INET);
}

TEST_CASE("connect: translation, 6to4, site-local and IETF/benchmark ranges are special") {
  // Issue 14 item 12: NAT64 (RFC 6052, RFC 8215), IPv4-compatible (RFC 4291 2.5.5.1),
  // 6to4 (RFC 3056), site-local (RFC 3879), IETF protocol assignments (RFC 6890) and
  // benchmarking (RFC 2544) addresses reach private or internal hosts by other names.
  for (const char* special :
       {"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::808:808", "64:ff9b:1::1",
        "64:ff9b:1:ffff::1", "::7f00:1", "::808:808", "2002:7f00:1::1", "2002::1", "fec0::1",
        "feff::1", "192.0.0.1", "192.0.0.255", "198.18.0.1", "198.19.255.255"}) {
    INFO(special);
    CHECK(special_range(addr(special)).has_value());
  }
  for (const char* pub : {"64:ff9b:2::1", "2003::1", "192.0.1.1", "198.20.0.1", "198.17.255.255",
                          "fe00::1", "::1:0:0:1"}) {
    INFO(pub);
    CHECK_FALSE(special_range(addr(pub)).has_value());
  }
  const std::vector<conf::ConnectRule> everything = {cidr_rule("0.0.0.0/0", {{1, 65535}}),
                                                     cidr_rule("::/0", {{1, 65535}})};
  CHECK_FALSE(check_address(everything, "", addr("64:ff9b::7f00:1"), 80).allowed);
  CHECK_FALSE(check_address(everything, "", addr("2002:a00:1::1"), 80).allowed);
  CHECK_FALSE(check_address(everything, "", addr("198.18.0.1"), 80).allowed);
  CHECK(check_address(everything, "", addr("64:ff9b::7f00:1"), 80).reason ==
        "[64:ff9b::7f00:1]:80 is in the NAT64 64:ff9b::/96 range, allowed only by a cidr rule "
        "inside it");
  // An explicit rule inside the range opens it.
  const std::vector<conf::ConnectRule> nat64 = {cidr_rule("64:ff9b::/96", {{443, 443}})};
  CHECK(check_address(nat64, "", addr("64:ff9b::808:808"), 443).allowed);
  const std::vector<conf::ConnectRule> bench = {cidr_rule("198.18.0.0/16", {{80, 80}})};
  CHECK(check_address(bench, "", addr("198.18.3.4"), 80).allowed);
  CHECK_FALSE(check_address(bench, "", addr("198.19.3.4"), 80).allowed);
  // ::/96 does not swallow the narrower loopback: a ::/96 rule leaves ::1 closed.
  const std::vector<conf::ConnectRule> compat = {cidr_rule("::/96", {{80, 80}})};
  CHECK(check_address(compat, "", addr("::808:808"), 80).allowed);
  CHECK_FALSE(check_address(compat, "", addr("::1"), 80).allowed);
}

TEST_CASE("connect: default deny") {
  CHECK_FALSE(check_name({}, "example.com", 443).allowed);
  CHECK_FALSE(check_address({}, "", addr("8.8.8.8"), 443).allowed);
  CHECK(check_address({}, "", addr("8.8.8.8"), 443).reason ==
        "no [[connect.allow]] rule allows 8.8.8.8:443");
}

TEST_CASE("connect: host rules allow names on their ports and public addresses only") {
  const std::vector<conf::ConnectRule> rules = {host_rule("*.example.com", {{443, 443}})};
  CHECK(check_name(rules, "a.example.com", 443).allowed);
  CHECK_FALSE(check_name(rules, "a.example.com", 80).allowed);
  CHECK_FALSE(check_name(rules, "example.org", 443).allowed);
  CHECK(check_address(rules, "a.example.com", addr("93.184.216.34"), 443).allowed);
  // DNS rebinding: the allowed name resolves to loopback or a private address.
  const Decision d = check_address(rules, "a.example.com", addr("127.0.0.1"), 443);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason ==
        "a.example.com -> 127.0.0.1:443 is in the loopback 127.0.0.0/8 range, allowed only by a "
        "cidr rule inside it");
  CHECK_FALSE(check_address(rules, "a.example.com", addr("::ffff:10.0.0.5"), 443).allowed);
  CHECK_FALSE(check_address(rules, "a.example.com", addr("fe80::1"), 443).allowed);
  // An IP literal is not a name: host rules do not apply.
  CHECK_FALSE(check_address({host_rule("*", {{443, 443}})}, "", addr("8.8.8.8"), 443).allowed);
}

// Found by tests/fuzz/connect_acl_fuzz.cc (rules only allow): a cidr rule covering the
// address on another port used to deny what a host rule allowed.
TEST_CASE("connect: a cidr rule for other ports does not undo a host rule") {
  const std::vector<conf::ConnectRule> rules = {host_rule("*.example.com", {{443, 443}}),
                                                cidr_rule("0.0.0.0/0", {{80, 80}})};
  CHECK(check_address(rules, "a.example.com", addr("93.184.216.34"), 443).allowed);
  CHECK(check_address(rules, "", addr("93.184.216.34"), 80).allowed);
  CHECK(check_address(rules, "", addr("93.184.216.34"), 443).reason ==
        "no [[connect.allow]] rule allows port 443 for 93.184.216.34:443");
  // Special ranges stay closed to host rules.
  CHECK_FALSE(check_address(rules, "a.example.com", addr("10.0.0.1"), 443).allowed);
}

TEST_CASE("connect: special ranges open only to a cidr rule inside them") {
  const std::vector<conf::ConnectRule> everything = {cidr_rule("0.0.0.0/0", {{1, 65535}}),
                                                     cidr_rule("::/0", {{1, 65535}})};
  CHECK(check_address(everything, "", addr("8.8.8.8"), 80).allowed);
  CHECK_FALSE(check_address(everything, "", addr("127.0.0.1"), 80).allowed);
  CHECK_FALSE(check_address(everything, "", addr("::1"), 80).allowed);
  CHECK_FALSE(check_address(everything, "", addr("10.0.0.1"), 80).allowed);

  const std::vector<conf::ConnectRule> loopback = {cidr_rule("127.0.0.1/32", {{8080, 8080}})};
  CHECK(check_address(loopback, "", addr("127.0.0.1"), 8080).allowed);
  CHECK(check_address(loopback, "localhost", addr("127.0.0.1"), 8080).allowed);
  CHECK(check_address(loopback, "", addr("::ffff:127.0.0.1"), 8080).allowed);
  CHECK(check_address(loopback, "", addr("127.0.0.1"), 8081).reason ==
        "no [[connect.allow]] rule allows port 8081 for 127.0.0.1:8081");
  CHECK_FALSE(check_address(loopback, "", addr("127.0.0.2"), 8080).allowed);
  // A name may resolve into a cidr rule's network, so check_name lets it through.
  CHECK(check_name(loopback, "localhost", 8080).allowed);
  CHECK_FALSE(check_name(loopback, "localhost", 8081).allowed);

  const std::vector<conf::ConnectRule> private10 = {cidr_rule("10.0.0.0/8", {{22, 22}})};
  CHECK(check_address(private10, "", addr("10.9.8.7"), 22).allowed);
  const std::vector<conf::ConnectRule> wider = {cidr_rule("8.0.0.0/6", {{22, 22}})};
  CHECK_FALSE(check_address(wider, "", addr("10.9.8.7"), 22).allowed);  // /6 is wider than 10/8
}
