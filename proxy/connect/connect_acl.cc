#include "proxy/connect/connect_acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>

#include "conf/units.h"

namespace wsgate::proxy::connect {
namespace {

conf::IpNetwork v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, int prefix) {
  conf::IpNetwork n;
  n.family = AF_INET;
  n.address = {a, b, c, d};
  n.prefix = prefix;
  return n;
}

conf::IpNetwork v6(std::initializer_list<uint8_t> head, int prefix) {
  conf::IpNetwork n;
  n.family = AF_INET6;
  std::copy(head.begin(), head.end(), n.address.begin());
  n.prefix = prefix;
  return n;
}

// RFC 6890 special-purpose registries, the ranges a proxy must not reach by accident.
const std::vector<SpecialRange>& special_ranges() {
  static const std::vector<SpecialRange> ranges = {
      {"\"this network\" 0.0.0.0/8", v4(0, 0, 0, 0, 8)},
      {"private 10.0.0.0/8", v4(10, 0, 0, 0, 8)},
      {"shared address space 100.64.0.0/10", v4(100, 64, 0, 0, 10)},
      {"loopback 127.0.0.0/8", v4(127, 0, 0, 0, 8)},
      {"link-local 169.254.0.0/16", v4(169, 254, 0, 0, 16)},
      {"private 172.16.0.0/12", v4(172, 16, 0, 0, 12)},
      {"IETF protocol assignments 192.0.0.0/24", v4(192, 0, 0, 0, 24)},
      {"private 192.168.0.0/16", v4(192, 168, 0, 0, 16)},
      {"benchmarking 198.18.0.0/15", v4(198, 18, 0, 0, 15)},  // RFC 2544
      {"multicast 224.0.0.0/4", v4(224, 0, 0, 0, 4)},
      {"reserved 240.0.0.0/4", v4(240, 0, 0, 0, 4)},  // includes broadcast 255.255.255.255
      {"unspecified ::/128", v6({}, 128)},
      {"loopback ::1/128", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128)},
      // After :: and ::1, which it contains: the first match names the range, so a rule
      // inside ::/96 never opens loopback. RFC 4291 2.5.5.1 (deprecated IPv4-compatible).
      {"IPv4-compatible ::/96", v6({}, 96)},
      // NAT64 prefixes (RFC 6052 2.1, RFC 8215) and 6to4 (RFC 3056) embed an IPv4
      // address the translator or relay reaches on our behalf: loopback, 10/8, ...
      {"NAT64 64:ff9b::/96", v6({0x00, 0x64, 0xff, 0x9b}, 96)},
      {"local-use NAT64 64:ff9b:1::/48", v6({0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48)},
      {"6to4 2002::/16", v6({0x20, 0x02}, 16)},
      {"unique local fc00::/7", v6({0xfc}, 7)},
      {"link-local fe80::/10", v6({0xfe, 0x80}, 10)},
      {"site-local fec0::/10", v6({0xfe, 0xc0}, 10)},  // RFC 3879: deprecated, still routed
      {"multicast ff00::/8", v6({0xff}, 8)},
  };
  return ranges;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// `inner` lies entirely inside `outer`.
bool network_within(const conf::IpNetwork& inner, const conf::IpNetwork& outer) {
  if (inner.family != outer.family || inner.prefix < outer.prefix) return false;
  Address a;
  a.family = inner.family;
  a.bytes = inner.address;
  return network_contains(outer, a);
}

}  // namespace

AuthorityResult parse_authority(std::string_view text) {
  const auto fail = [&](std::string why) {
    return AuthorityResult{std::nullopt, "invalid CONNECT target \"" +
                                             std::string(text.substr(0, 200)) + "\": " + why +
                                             " (RFC 9110 9.3.6: host:port)"};
  };
  if (text.find('@') != std::string_view::npos) return fail("userinfo is not allowed");
  std::string_view host;
  std::string_view port;
  Authority a;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("unclosed '['");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return fail("missing port");
    port = rest.substr(1);
    in6_addr six{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &six) != 1)
      return fail("not an IPv6 address in brackets");
    a.is_ip = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("missing port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return fail("IPv6 addresses need brackets");
  }
  if (host.empty()) return fail("empty host");
  unsigned value = 0;
  const auto [rest, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || rest != port.data() + port.size())
    return fail("missing or non-numeric port");
  if (value < 1 || value > 65535) return fail("port out of range 1..65535");
  a.port = static_cast<uint16_t>(value);
  a.host = lower(host);
  if (!a.is_ip) {
    in_addr four{};
    if (inet_pton(AF_INET, a.host.c_str(), &four) == 1) {
      a.is_ip = true;
    } else if (!std::all_of(a.host.begin(), a.host.end(), is_host_char) ||
               !conf::is_host_name(a.host)) {
      // Also refuses shorthand numeric forms ("127.1") that resolvers would read as IPs.
      return fail("not a host name or IP address");
    }
  }
  if (a.is_ip) {
    // The canonical text, so logs and ACL messages show one spelling.
    a.host = to_string(*parse_address(a.host));
  }
  return AuthorityResult{std::move(a), {}};
}

std::optional<Address> parse_address(std::string_view text) {
  const std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    std::copy(a.bytes.begin(), a.bytes.end(), reinterpret_cast<uint8_t*>(&sin6.sin6_addr));
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6));
  }
  return std::nullopt;
}

std::optional<Address> from_sockaddr(const sockaddr* sa) {
  Address a;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    a.family = AF_INET;
    std::copy_n(reinterpret_cast<const uint8_t*>(&in->sin_addr), 4, a.bytes.begin());
    return a;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    const auto* b = reinterpret_cast<const uint8_t*>(&in6->sin6_addr);
    // RFC 4291 2.5.5.2: ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      a.family = AF_INET;
      std::copy_n(b + 12, 4, a.bytes.begin());
      return a;
    }
    a.family = AF_INET6;
    std::copy_n(b, 16, a.bytes.begin());
    return a;
  }
  return std::nullopt;
}

std::string to_string(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(a.family, a.bytes.data(), buf, sizeof buf);
  return buf;
}

bool network_contains(const conf::IpNetwork& net, const Address& a) {
  if (net.family != a.family) return false;
  const int full = net.prefix / 8;
  if (!std::equal(net.address.begin(), net.address.begin() + full, a.bytes.begin())) return false;
  const int bits = net.prefix % 8;
  if (bits == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (net.address[static_cast<std::size_t>(full)] & mask) ==
         (a.bytes[static_cast<std::size_t>(full)] & mask);
}

bool host_matches(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return true;
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.ends_with(suffix);
  }
  return pattern == host;
}

bool port_allowed(const std::vector<conf::PortRange>& ports, uint16_t port) {
  return std::any_of(ports.begin(), ports.end(), [port](const conf::PortRange& r) {
    return port >= r.first && port <= r.last;
  });
}

std::optional<SpecialRange> special_range(const Address& a) {
  for (const auto& r : special_ranges())
    if (network_contains(r.network, a)) return r;
  return std::nullopt;
}

Decision check_name(const std::vector<conf::ConnectRule>& rules, std::string_view host,
                    uint16_t port) {
  for (const auto& rule : rules) {
    if (!port_allowed(rule.ports, port)) continue;
    if (rule.network || host_matches(rule.host, host)) return {true, {}};
  }
  return {false,
          "no [[connect.allow]] rule allows " + std::string(host) + ":" + std::to_string(port)};
}

Decision check_address(const std::vector<conf::ConnectRule>& rules, std::string_view name,
                       const Address& a, uint16_t port) {
  const std::optional<SpecialRange> special = special_range(a);
  bool name_allowed = false;
  bool other_port = false;  // a rule covers the address, but not this port
  for (const auto& rule : rules) {
    if (!port_allowed(rule.ports, port)) {
      other_port = other_port || (rule.network && network_contains(*rule.network, a) &&
                                  (!special || network_within(*rule.network, special->network)));
      continue;
    }
    if (rule.network) {
      if (!network_contains(*rule.network, a)) continue;
      // A special range opens only to a rule that names (part of) it.
      if (!special || network_within(*rule.network, special->network)) return {true, {}};
    } else if (!name.empty() && host_matches(rule.host, name)) {
      name_allowed = true;
    }
  }
  const std::string target = (name.empty() ? std::string() : std::string(name) + " -> ") +
                             (a.family == AF_INET6 ? "[" + to_string(a) + "]" : to_string(a)) +
                             ":" + std::to_string(port);
  // Rules only ever allow: a host rule that allows this name and port is not undone by
  // a cidr rule that covers the address on other ports.
  if (name_allowed && !special) return {true, {}};
  if (other_port)
    return {false,
            "no [[connect.allow]] rule allows port " + std::to_string(port) + " for " + target};
  if (special)
    return {false, target + " is in the " + std::string(special->name) +
                       " range, allowed only by a cidr rule inside it"};
  return {false, "no [[connect.allow]] rule allows " + target};
}

}  // namespace wsgate::proxy::connect
