// ASCII case-insensitive comparison for field names and tokens (RFC 9110 5.1: field
// names are case-insensitive), and optional whitespace (RFC 9110 5.6.3). Inline, because
// they run for every field of every head several times, and most comparisons are of
// names of different lengths: they end at the size check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace wsgate::ascii {

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Eight bytes with 'A'..'Z' made lowercase and every other byte (0x80 and up too) as
// it was: a byte is upper case when its low seven bits are 0x41..0x5a and its high bit
// is clear; adding 0x3f (0x25) to the low seven bits sets the high bit from 0x41 (0x5b).
constexpr uint64_t lower8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = kOnes * 0x80;
  const uint64_t low7 = w & ~kHigh;
  const uint64_t upper = (low7 + kOnes * 0x3f) & ~(low7 + kOnes * 0x25) & ~w & kHigh;
  return w | (upper >> 2);
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.size() < 8 || std::is_constant_evaluated()) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (lower(a[i]) != lower(b[i])) return false;
    return true;
  }
  // Longer names eight bytes at a time; the last word overlaps the one before it.
  const auto word_equal = [&a, &b](std::size_t i) {
    uint64_t x = 0;
    uint64_t y = 0;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    return x == y || lower8(x) == lower8(y);
  };
  std::size_t i = 0;
  for (; i + 8 <= a.size(); i += 8)
    if (!word_equal(i)) return false;
  return i == a.size() || word_equal(a.size() - 8);
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
