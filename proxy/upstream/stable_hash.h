// A hash that is the same on every wsgate instance, build and platform (std::hash is
// not), so consistent hashing maps a key to the same server everywhere.
#pragma once

#include <cstdint>
#include <string_view>

namespace wsgate::proxy {

// splitmix64's finalizer: spreads every input bit over the whole word.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// FNV-1a 64 over the bytes, seeded, then mixed (FNV alone is weak in the low bits).
constexpr std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed = 0) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

}  // namespace wsgate::proxy
