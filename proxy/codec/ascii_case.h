// ASCII case-insensitive comparison for field names and tokens (RFC 9110 5.1: field
// names are case-insensitive). Inline, because it runs for every field of every head
// several times, and most calls compare names of different lengths: they end at the
// size check.
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

}  // namespace wsgate::ascii
