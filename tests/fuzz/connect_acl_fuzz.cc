// CONNECT targets (proxy/connect/connect_acl.h): the authority a client asks for, and the ACL
// deciding where a tunnel may go.
//
// Input: the bytes are the authority text ("host:port"); the same bytes also give an
// IPv4 and an IPv6 address and a port for the ACL checks.
//
// Properties:
//  - a parsed authority is canonical: non-empty lowercase host, port 1..65535, and
//    printing it and parsing again gives the same authority; an IP host reads back as an
//    address whose text is the host itself;
//  - parse_address / to_string round-trip;
//  - the ACL never allows more than its contract (no false allow): an allowed address
//    is covered by a rule for that port, and an address in a special range only by a
//    cidr rule that lies inside that range; check_name allows only what some rule can;
//  - nor less: rules only ever allow, so what one rule allows alone the whole set allows;
//  - every refusal reason is one line (for a target that is: the error quotes it, and
//    the HTTP/1.1 parser lets only visible ASCII into a request-target).
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/connect/connect_acl.h"
#include "tests/fuzz/fuzz_check.h"

namespace acl = wsgate::proxy::connect;
namespace conf = wsgate::conf;
using wsgate::fuzz::is_one_line;

namespace {

conf::IpNetwork net(const char* text, int prefix) {
  conf::IpNetwork n;
  const auto a = acl::parse_address(text);
  n.family = a->family;
  n.address = a->bytes;
  n.prefix = prefix;
  return n;
}

conf::ConnectRule host_rule(std::string host, uint16_t first, uint16_t last) {
  conf::ConnectRule r;
  r.host = std::move(host);
  r.ports = {{first, last}};
  return r;
}

conf::ConnectRule cidr_rule(const char* address, int prefix, uint16_t first, uint16_t last) {
  conf::ConnectRule r;
  r.network = net(address, prefix);
  r.ports = {{first, last}};
  return r;
}

const std::vector<std::vector<conf::ConnectRule>>& rule_sets() {
  static const std::vector<std::vector<conf::ConnectRule>> sets = {
      {host_rule("*", 1, 65535)},
      {host_rule("*.example.com", 443, 443), host_rule("example.org", 8000, 8100),
       cidr_rule("10.1.0.0", 16, 80, 80), cidr_rule("fd00::", 8, 22, 22)},
      {cidr_rule("0.0.0.0", 0, 1, 65535), cidr_rule("::", 0, 1, 65535)},
      {cidr_rule("127.0.0.1", 32, 8080, 8080), cidr_rule("192.168.0.0", 16, 1, 1024),
       host_rule("*", 443, 443)},
      {host_rule("*.example.com", 443, 443), cidr_rule("0.0.0.0", 0, 80, 80),
       cidr_rule("::", 0, 80, 80)},
  };
  return sets;
}

// `inner` lies inside `outer`, computed independently of the code under test.
bool within(const conf::IpNetwork& inner, const conf::IpNetwork& outer) {
  if (inner.family != outer.family || inner.prefix < outer.prefix) return false;
  acl::Address a;
  a.family = inner.family;
  a.bytes = inner.address;
  return acl::network_contains(outer, a);
}

void check_acl(const std::vector<conf::ConnectRule>& rules, std::string_view name,
               const acl::Address& a, uint16_t port) {
  const acl::Decision d = acl::check_address(rules, name, a, port);
  if (!d.allowed) {
    FUZZ_CHECK(!d.reason.empty() && is_one_line(d.reason));
    // Rules only allow: what one of them allows alone, all of them allow together.
    for (const auto& rule : rules) FUZZ_CHECK(!acl::check_address({rule}, name, a, port).allowed);
    return;
  }
  const auto special = acl::special_range(a);
  bool covered = false;
  for (const auto& rule : rules) {
    if (!acl::port_allowed(rule.ports, port)) continue;
    if (rule.network) {
      if (acl::network_contains(*rule.network, a) &&
          (!special || within(*rule.network, special->network)))
        covered = true;
    } else if (!special && !name.empty() && acl::host_matches(rule.host, name)) {
      covered = true;
    }
  }
  FUZZ_CHECK(covered);
}

void check_authority(std::string_view text) {
  const acl::AuthorityResult r = acl::parse_authority(text);
  if (!r.authority) {
    // The error quotes the target; the HTTP/1.1 parser let only visible ASCII through.
    FUZZ_CHECK(!r.error.empty());
    if (is_one_line(text)) FUZZ_CHECK(is_one_line(r.error));
    return;
  }
  const acl::Authority& a = *r.authority;
  FUZZ_CHECK(!a.host.empty() && a.port >= 1);
  for (char c : a.host) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  const bool v6 = a.host.find(':') != std::string::npos;
  FUZZ_CHECK(!v6 || a.is_ip);
  const std::string printed = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
  const acl::AuthorityResult again = acl::parse_authority(printed);
  FUZZ_CHECK(again.authority.has_value());
  FUZZ_CHECK(again.authority->host == a.host && again.authority->port == a.port &&
             again.authority->is_ip == a.is_ip);
  if (a.is_ip) {
    const auto addr = acl::parse_address(a.host);
    FUZZ_CHECK(addr.has_value());
    FUZZ_CHECK(acl::to_string(*addr) == a.host);
  }

  for (const auto& rules : rule_sets()) {
    const acl::Decision d = acl::check_name(rules, a.host, a.port);
    if (!d.allowed) {
      FUZZ_CHECK(is_one_line(d.reason));
      continue;
    }
    bool some_rule = false;
    for (const auto& rule : rules)
      if (acl::port_allowed(rule.ports, a.port) &&
          (rule.network || acl::host_matches(rule.host, a.host)))
        some_rule = true;
    FUZZ_CHECK(some_rule);
    if (a.is_ip) {
      check_acl(rules, "", *acl::parse_address(a.host), a.port);
      continue;
    }
    // A name: check the addresses it might resolve to, public and special.
    for (const char* resolved : {"93.184.216.34", "2606:2800:220:1::1", "10.1.2.3", "127.0.0.1",
                                 "fd00::1", "::ffff:192.168.1.1"})
      check_acl(rules, a.host, *acl::parse_address(resolved), a.port);
  }
}

void check_address_bytes(const uint8_t* data, std::size_t size) {
  if (size < 18) return;
  const uint16_t port = static_cast<uint16_t>((data[16] << 8) | data[17]);
  acl::Address four;
  four.family = AF_INET;
  std::memcpy(four.bytes.data(), data, 4);
  acl::Address six;
  six.family = AF_INET6;
  std::memcpy(six.bytes.data(), data, 16);
  for (const acl::Address& a : {four, six}) {
    const std::string text = acl::to_string(a);
    const auto back = acl::parse_address(text);
    FUZZ_CHECK(back.has_value());
    // IPv4-mapped IPv6 reads back as the IPv4 address.
    const bool mapped = a.family == AF_INET6 &&
                        std::memcmp(a.bytes.data(), "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
    if (!mapped) FUZZ_CHECK(*back == a);
    for (const auto& rules : rule_sets()) {
      check_acl(rules, "", *back, port);
      check_acl(rules, "a.example.com", *back, port);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  check_authority(std::string_view(reinterpret_cast<const char*>(data), size));
  check_address_bytes(data, size);
  return 0;
}
