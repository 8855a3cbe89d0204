// Parsing of human-friendly config values: durations ("250ms", "30s", "5m", "1h") and
// sizes ("512", "64KiB", "16MiB", "1GiB", also "KB"/"MB"/"GB" as powers of 1000).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "conf/config.h"

namespace wsgate::conf {

// Accepts <non-negative integer><unit> with unit one of ms, s, m, h. No unit, negative
// numbers, fractions, spaces and overflow are rejected (nullopt).
std::optional<Duration> parse_duration(std::string_view text);

// Accepts <non-negative integer>[unit] with unit one of B, KiB, MiB, GiB, KB, MB, GB
// (case-sensitive, no space). Overflow is rejected (nullopt).
std::optional<std::uint64_t> parse_size(std::string_view text);

// "127.0.0.1:8080", "[::1]:8080", "example.com:443"; port 1..65535 required.
// An IP literal's host is stored in its canonical text form ("[0:0::1]" -> "::1").
std::optional<HostPort> parse_host_port(std::string_view text);

// True for an IPv4 ("10.0.0.1") or IPv6 ("::1", no brackets) address literal.
bool is_ip_literal(std::string_view host);

// True for a DNS name: dot-separated labels of 1..63 letters, digits, '-' (not at either
// end of a label) or '_'; at most 253 characters; the last label is not all digits.
bool is_host_name(std::string_view host);

}  // namespace wsgate::conf
