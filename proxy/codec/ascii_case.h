// ASCII case-insensitive comparison for field names and tokens (RFC 9110 5.1: field
// names are case-insensitive), and optional whitespace (RFC 9110 5.6.3). Inline, because
// they run for every field of every head several times, and most comparisons are of
// names of different lengths: they end at the size check.
#pragma once

#include <cstddef>
#include <string_view>

namespace wsgate::ascii {

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// RFC 9110 5.6.3: OWS = *( SP / HTAB ).
constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// `s` without the optional whitespace around it (a field value, a list member).
constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace wsgate::ascii
