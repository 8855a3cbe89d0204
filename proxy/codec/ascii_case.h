// ASCII case-insensitive comparison for field names and tokens (RFC 9110 5.1: field
// names are case-insensitive), and optional whitespace (RFC 9110 5.6.3). Inline, because
// they run for every field of every head several times, and most comparisons are of
// names of different lengths: they end at the size check.
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

namespace wsgate::ascii {

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

namespace detail {
// Byte by byte: short names, and constant evaluation.
constexpr bool iequals_bytes(const char* a, const char* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}
// The comparison of two names of the same length `n` (ascii_case.cc).
bool iequals_n(const char* a, const char* b, std::size_t n);
}  // namespace detail

// The size check is inline (most names compared differ in length); equal lengths are
// compared out of line, eight bytes at a time.
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (std::is_constant_evaluated()) return detail::iequals_bytes(a.data(), b.data(), a.size());
  return detail::iequals_n(a.data(), b.data(), a.size());
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
