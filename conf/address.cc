#include "conf/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>

namespace wsgate::conf {
namespace {

// Canonical text of an IP literal, or nullopt when `host` is not one.
std::optional<std::string> canonical_ip(std::string_view host) {
  const std::string text(host);  // inet_pton needs a NUL-terminated string
  in6_addr addr6{};
  char buffer[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET6, text.c_str(), &addr6) == 1 &&
      inet_ntop(AF_INET6, &addr6, buffer, sizeof buffer) != nullptr)
    return std::string(buffer);
  in_addr addr4{};
  // glibc accepts only the strict dotted quad here: no "010.1.1.1", no "10.1".
  if (inet_pton(AF_INET, text.c_str(), &addr4) == 1) return text;
  return std::nullopt;
}

bool is_host_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  HostPort result;
  if (text.starts_with('[')) {
    // RFC 3986 3.2.2: an IPv6 literal is bracketed so its colons are not read as the port's.
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    const auto ip = canonical_ip(host);
    if (!ip || host.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]"
    result.host = *ip;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // unbracketed IPv6
    if (auto ip = canonical_ip(host)) {
      result.host = *ip;
    } else if (is_host_name(host)) {
      result.host = std::string(host);
    } else {
      return std::nullopt;
    }
  }
  unsigned value = 0;
  const char* end = port.data() + port.size();
  const auto [rest, ec] = std::from_chars(port.data(), end, value);
  if (port.empty() || ec != std::errc() || rest != end || value < 1 || value > 65535)
    return std::nullopt;
  result.port = static_cast<std::uint16_t>(value);
  return result;
}

bool is_ip_literal(std::string_view host) {
  return canonical_ip(host).has_value();
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::string_view last_label;
  for (std::size_t start = 0; start <= host.size();) {
    const auto dot = std::min(host.find('.', start), host.size());
    const auto label = host.substr(start, dot - start);
    // RFC 1035 2.3.1 (relaxed by RFC 1123 2.1 to allow a leading digit); '_' is accepted
    // because container and service-discovery names use it.
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), is_host_label_char))
      return false;
    last_label = label;
    start = dot + 1;
  }
  // An all-numeric last label would make "1.2.3.999" a name; RFC 3696 2 rules it out.
  return !std::all_of(last_label.begin(), last_label.end(),
                      [](char c) { return c >= '0' && c <= '9'; });
}

std::string format_host_port(std::string_view host, std::uint16_t port) {
  char digits[5];
  const auto digits_end = std::to_chars(digits, digits + sizeof digits, port).ptr;
  const std::string_view port_text(digits, static_cast<std::size_t>(digits_end - digits));
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string out;
  // The exact size: "127.0.0.1:8080" and the like stay in the string itself (no
  // allocation); it is formatted for every forwarded request's upstream.
  out.reserve(host.size() + (v6 ? 2 : 0) + 1 + port_text.size());
  if (v6) out += '[';
  out.append(host);
  if (v6) out += ']';
  out += ':';
  out.append(port_text);
  return out;
}

SocketAddressText describe(const sockaddr* address) {
  SocketAddressText t;
  char buf[INET6_ADDRSTRLEN] = "?";
  if (address->sa_family == AF_INET) {
    // Dotted decimal by hand: glibc's inet_ntop formats IPv4 with sprintf, 1,700
    // instructions for every accepted connection.
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    const auto* b = reinterpret_cast<const unsigned char*>(&in->sin_addr);
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      p = std::to_chars(p, buf + sizeof(buf), static_cast<unsigned>(b[i])).ptr;
    }
    *p = '\0';
    t.port = ntohs(in->sin_port);
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    t.port = ntohs(in6->sin6_port);
  } else {
    t.ip = t.ip_port = "?";
    return t;
  }
  t.ip = buf;
  t.ip_port = format_host_port(t.ip, t.port);
  return t;
}

bool to_sockaddr(const HostPort& address, sockaddr_storage& out, socklen_t& length) {
  out = {};
  if (auto* in4 = reinterpret_cast<sockaddr_in*>(&out);
      inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(address.port);
    length = sizeof(sockaddr_in);
    return true;
  }
  out = {};
  if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
      inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port);
    length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace wsgate::conf
