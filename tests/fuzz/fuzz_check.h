// Shared by the fuzz targets: a property check that stops the run with a message
// (libFuzzer then saves the input as a crash artifact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

// A property that fails today because of a reported defect not fixed yet: it is checked
// only with WSGATE_FUZZ_STRICT=1 in the environment (scripts/fuzz.sh --strict), so the
// CI runs stay green while the reproducer under tests/fuzz/known/ documents the defect.
// The fix turns it into a FUZZ_CHECK. `issue` names the defect, e.g. "issue 14.5".
#define FUZZ_CHECK_KNOWN(issue, cond)                                                              \
  do {                                                                                             \
    if (wsgate::fuzz::strict() && !(cond)) {                                                       \
      std::fprintf(stderr, "%s:%d: property failed (%s): %s\n", __FILE__, __LINE__, issue, #cond); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

namespace wsgate::fuzz {

inline bool strict() {
  static const bool on = [] {
    const char* v = std::getenv("WSGATE_FUZZ_STRICT");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

// "One line, safe to send to the client": no CR, LF or NUL.
inline bool is_one_line(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// `view` lies inside `owner` (or is empty).
inline bool points_into(std::string_view view, std::string_view owner) {
  if (view.empty()) return true;
  return view.data() >= owner.data() && view.data() + view.size() <= owner.data() + owner.size();
}

// RFC 3629, written apart from the code under test: no overlongs, surrogates or
// code points above U+10FFFF.
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80           ? 1
                      : (c >> 5) == 0x6  ? 2
                      : (c >> 4) == 0xE  ? 3
                      : (c >> 3) == 0x1E ? 4
                                         : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace wsgate::fuzz
