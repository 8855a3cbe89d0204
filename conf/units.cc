// Parsing of durations and sizes (see units.h for the accepted forms).
#include "conf/units.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>
#include <utility>

namespace wsgate::conf {
namespace {

// "<digits><unit>" split into its value and unit. No sign, space or fraction is accepted:
// the number must start at the first character.
struct Quantity {
  std::uint64_t value = 0;
  std::string_view unit;
};

std::optional<Quantity> split_quantity(std::string_view text) {
  Quantity q;
  const char* end = text.data() + text.size();
  auto [rest, ec] = std::from_chars(text.data(), end, q.value);
  if (ec != std::errc()) return std::nullopt;  // no digits, or the number overflows
  q.unit = std::string_view(rest, static_cast<std::size_t>(end - rest));
  return q;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> kUnitsInMs[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
  const auto q = split_quantity(text);
  if (!q) return std::nullopt;
  for (const auto& [unit, ms] : kUnitsInMs) {
    if (q->unit != unit) continue;
    constexpr auto kMaxMs = static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());
    if (q->value > kMaxMs / ms) return std::nullopt;
    return Duration(static_cast<Duration::rep>(q->value * ms));
  }
  return std::nullopt;  // missing or unknown unit
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> kUnitsInBytes[] = {
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000}};
  const auto q = split_quantity(text);
  if (!q) return std::nullopt;
  for (const auto& [unit, bytes] : kUnitsInBytes) {
    if (q->unit != unit) continue;
    if (q->value > std::numeric_limits<std::uint64_t>::max() / bytes) return std::nullopt;
    return q->value * bytes;
  }
  return std::nullopt;
}

}  // namespace wsgate::conf
