#include "proxy/codec/ascii_case.h"

#include <cstdint>
#include <cstring>

namespace wsgate::ascii::detail {
namespace {

// Eight bytes with 'A'..'Z' made lowercase and every other byte (0x80 and up too) as
// it was: a byte is upper case when its low seven bits are 0x41..0x5a and its high bit
// is clear; adding 0x3f (0x25) to the low seven bits sets the high bit from 0x41 (0x5b).
uint64_t lower8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = kOnes * 0x80;
  const uint64_t low7 = w & ~kHigh;
  const uint64_t upper = (low7 + kOnes * 0x3f) & ~(low7 + kOnes * 0x25) & ~w & kHigh;
  return w | (upper >> 2);
}

bool word_equal(const char* a, const char* b) {
  uint64_t x = 0;
  uint64_t y = 0;
  std::memcpy(&x, a, 8);
  std::memcpy(&y, b, 8);
  return x == y || lower8(x) == lower8(y);
}

}  // namespace

bool iequals_n(const char* a, const char* b, std::size_t n) {
  if (n < 8) return iequals_bytes(a, b, n);
  // Eight bytes at a time; the last word overlaps the one before it.
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (!word_equal(a + i, b + i)) return false;
  return i == n || word_equal(a + n - 8, b + n - 8);
}

}  // namespace wsgate::ascii::detail
