// The one place addresses are read and written: "host:port" text (config values, logs,
// metric labels, the connection table) and socket addresses. IPv6 literals are
// bracketed wherever a port follows (RFC 3986 3.2.2).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace wsgate::conf {

// "127.0.0.1:8080", "[::1]:8080", "example.com:443"; port 1..65535 required.
// An IP literal's host is stored in its canonical text form ("[0:0::1]" -> "::1").
std::optional<HostPort> parse_host_port(std::string_view text);

// True for an IPv4 ("10.0.0.1") or IPv6 ("::1", no brackets) address literal.
bool is_ip_literal(std::string_view host);

// True for a DNS name: dot-separated labels of 1..63 letters, digits, '-' (not at either
// end of a label) or '_'; at most 253 characters; the last label is not all digits.
bool is_host_name(std::string_view host);

// "host:port", "[v6]:port".
std::string format_host_port(std::string_view host, std::uint16_t port);
inline std::string to_string(const HostPort& a) {
  return format_host_port(a.host, a.port);
}

// `address` (an IPv4 or IPv6 literal and a port) as a socket address; false when the
// host is not an IP literal.
bool to_sockaddr(const HostPort& address, sockaddr_storage& out, socklen_t& length);

// A socket address (AF_INET or AF_INET6) as text: its IP ("::1") and "ip:port"
// ("[::1]:8080"); "?" for other families.
struct SocketAddressText {
  std::string ip;
  std::string ip_port;
  std::uint16_t port = 0;
};
SocketAddressText describe(const sockaddr* address);

}  // namespace wsgate::conf
