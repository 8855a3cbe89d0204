// The config loader (conf/config_loader.h) over arbitrary text: TOML parsing, then every
// section's validation. A config is trusted input, but reload takes whatever the file
// holds at SIGHUP time, and a loader that crashes or throws past load_config_text takes
// the running gateway down instead of rejecting the reload.
// Properties: no crash and no exception escapes; exactly one of config / error is set;
// an error has a message and a position (0 only when it has none); loading is
// deterministic (the same text gives the same error again).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "conf/config_loader.h"
#include "tests/fuzz/fuzz_check.h"

namespace conf = wsgate::conf;

namespace {

// toml++ 3.3.0 (Debian's) reaches __builtin_unreachable in
// is_non_ascii_horizontal_whitespace() for some code points where it looks for whitespace
// (U+00A1..U+0499 and U+FB26..U+FEFE; upstream marzer/tomlplusplus#295, fixed by PR #305
// after 3.3.0). Debian's -O2 library happens to answer "not whitespace" and the loader
// reports a clean error (tests/fuzz/known/config/), but under UBSan every such input
// stops the run, so inputs holding one are skipped unless WSGATE_FUZZ_STRICT=1.
bool toml_issue_295(char32_t c) {
  if (c <= 0xA0 || c >= 0xFEFF || c == 0x3000) return false;
  const uint64_t child = (static_cast<uint64_t>(c) - 0xA0) / 0x3FA;
  const bool excluded = ((1ULL << child) & 0x7FFFFFFFFFFFF75EULL) != 0;
  return !excluded && child != 5 && child != 7;  // the same test as toml++'s
}

bool hits_toml_issue_295(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : 0;
    if (len == 0 || i + len > text.size()) continue;
    char32_t cp = c & (len == 2 ? 0x1F : 0x0F);
    for (std::size_t k = 1; k < len; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    if (toml_issue_295(cp)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!wsgate::fuzz::strict() && hits_toml_issue_295(text)) return 0;
  const conf::LoadResult r = conf::load_config_text(text, "fuzz.toml");
  FUZZ_CHECK(r.ok() != r.error.has_value());
  if (r.ok()) return 0;
  const conf::ConfigError& e = *r.error;
  FUZZ_CHECK(e.file == "fuzz.toml");
  FUZZ_CHECK(!e.message.empty());
  FUZZ_CHECK(e.line >= 0 && e.column >= 0);
  FUZZ_CHECK((e.line == 0) == (e.column == 0));
  const std::string shown = e.to_string();
  FUZZ_CHECK(shown.starts_with("fuzz.toml"));

  const conf::LoadResult again = conf::load_config_text(text, "fuzz.toml");
  FUZZ_CHECK(again.error.has_value() && again.error->to_string() == shown);
  return 0;
}
