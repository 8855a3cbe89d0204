// Who may be reached through a CONNECT tunnel: pure functions over the [connect] allow
// rules, no I/O (unit-tested in tests/proxy/connect/connect_acl_test.cc).
//
// The policy is default-deny. A destination is allowed when
//  - its port is in the ports of a rule that matches it, and
//  - a host name matches a `host` rule ("example.com", "*.example.com", "*"), or an
//    address lies in a `cidr` rule's network;
//  - and every address actually connected to passes check_address(): an address in a
//    special range (loopback, "this network", link-local, private, shared, ULA,
//    multicast, broadcast) is allowed only by a cidr rule that lies inside that range
//    ("127.0.0.1/32" or "10.0.0.0/8", not "0.0.0.0/0"), whatever name led to it. So a
//    public name that resolves to 127.0.0.1 is denied (no DNS-rebinding bypass).
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked as the IPv4 address.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace wsgate::proxy::connect {

// RFC 9112 3.2.3 authority-form: uri-host ":" port.
struct Authority {
  std::string host;  // lowercase name, or an IP literal without brackets
  uint16_t port = 0;
  bool is_ip = false;
};
struct AuthorityResult {
  std::optional<Authority> authority;
  std::string error;  // one line, when authority is empty
};
// "example.com:443", "10.0.0.1:8080", "[2001:db8::1]:443". Refused: userinfo, an empty
// host, a missing, zero or out-of-range port, anything that is not a DNS name or an IP
// literal (RFC 9110 9.3.6: the target is only host and port).
AuthorityResult parse_authority(std::string_view text);

struct Address {
  int family = 0;                   // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 in the first 4 bytes
  bool operator==(const Address&) const = default;
};
// IP literal -> Address (IPv4-mapped IPv6 becomes IPv4); nullopt if not a literal.
std::optional<Address> parse_address(std::string_view text);
// A sockaddr_in / sockaddr_in6 -> Address (IPv4-mapped unwrapped); nullopt otherwise.
std::optional<Address> from_sockaddr(const sockaddr* sa);
std::string to_string(const Address& a);

bool network_contains(const conf::IpNetwork& net, const Address& a);
// `pattern`: "example.com" (exactly), "*.example.com" (any name below it, not itself),
// "*" (any name). Both lowercase.
bool host_matches(std::string_view pattern, std::string_view host);
bool port_allowed(const std::vector<conf::PortRange>& ports, uint16_t port);

// The special range `a` lies in ("loopback 127.0.0.0/8", ...), or nullopt for a public
// address.
struct SpecialRange {
  std::string_view name;
  conf::IpNetwork network;
};
std::optional<SpecialRange> special_range(const Address& a);

struct Decision {
  bool allowed = false;
  std::string reason;  // why not, one line (for the 403 body and the log)
};

// Before resolving: may this name and port be allowed at all? (a host rule matches, or
// some cidr rule has the port, since the name may resolve into that network). IP
// literals go straight to check_address().
Decision check_name(const std::vector<conf::ConnectRule>& rules, std::string_view host,
                    uint16_t port);
// May the tunnel connect to `a`:port? `name`: the host name that resolved to it ("" for
// an IP literal), so host rules can apply to public addresses.
Decision check_address(const std::vector<conf::ConnectRule>& rules, std::string_view name,
                       const Address& a, uint16_t port);

}  // namespace wsgate::proxy::connect
