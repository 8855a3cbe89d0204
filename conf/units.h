// Parsing of human-friendly config values: durations ("250ms", "30s", "5m", "1h") and
// sizes ("512", "64KiB", "16MiB", "1GiB", also "KB"/"MB"/"GB" as powers of 1000).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "conf/address.h"
#include "conf/config.h"

namespace wsgate::conf {

// Accepts <non-negative integer><unit> with unit one of ms, s, m, h. No unit, negative
// numbers, fractions, spaces and overflow are rejected (nullopt).
std::optional<Duration> parse_duration(std::string_view text);

// Accepts <non-negative integer>[unit] with unit one of B, KiB, MiB, GiB, KB, MB, GB
// (case-sensitive, no space). Overflow is rejected (nullopt).
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace wsgate::conf
