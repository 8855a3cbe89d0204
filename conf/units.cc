// Parsing of durations, sizes and host:port values (see units.h for the accepted forms).
#include "conf/units.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>
#include <utility>

namespace wsgate::conf {
namespace {

// "<digits><unit>" split into its value and unit. No sign, space or fraction is accepted:
// the number must start at the first character.
struct Quantity {
  std::uint64_t value = 0;
  std::string_view unit;
};

std::optional<Quantity> split_quantity(std::string_view text) {
  Quantity q;
  const char* end = text.data() + text.size();
  auto [rest, ec] = std::from_chars(text.data(), end, q.value);
  if (ec != std::errc()) return std::nullopt;  // no digits, or the number overflows
  q.unit = std::string_view(rest, static_cast<std::size_t>(end - rest));
  return q;
}

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

std::optional<Duration> parse_duration(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> kUnitsInMs[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
  const auto q = split_quantity(text);
  if (!q) return std::nullopt;
  for (const auto& [unit, ms] : kUnitsInMs) {
    if (q->unit != unit) continue;
    constexpr auto kMaxMs = static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());
    if (q->value > kMaxMs / ms) return std::nullopt;
    return Duration(static_cast<Duration::rep>(q->value * ms));
  }
  return std::nullopt;  // missing or unknown unit
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> kUnitsInBytes[] = {
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000}};
  const auto q = split_quantity(text);
  if (!q) return std::nullopt;
  for (const auto& [unit, bytes] : kUnitsInBytes) {
    if (q->unit != unit) continue;
    if (q->value > std::numeric_limits<std::uint64_t>::max() / bytes) return std::nullopt;
    return q->value * bytes;
  }
  return std::nullopt;
}

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

}  // namespace wsgate::conf
