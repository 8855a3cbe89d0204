// Value checks for the config loader: unknown keys, types, ranges, and the forms of route
// hosts, paths and origins. Every failure is a ConfigError at the position of the value.
#include "conf/config_validate.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <utility>

#include "conf/units.h"

namespace wsgate::conf::detail {
// How a value found in the file reads in a message: strings quoted, others with their type.
std::string describe(const toml::node& node) {
  std::ostringstream out;
  switch (node.type()) {
    case toml::node_type::string:
      return quoted(node.as_string()->get());
    case toml::node_type::integer:
      return "integer " + std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      out << "float " << *node.as_floating_point();
      return out.str();
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "boolean true" : "boolean false";
    case toml::node_type::array:
      return node.as_array()->empty() ? "an empty array" : "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

namespace {

// "1KiB", "16MiB", or plain bytes: how a size limit reads in a message.
std::string format_size(std::uint64_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
  return std::to_string(bytes);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

bool source_before(const toml::source_region& a, const toml::source_region& b) {
  return std::pair(a.begin.line, a.begin.column) < std::pair(b.begin.line, b.begin.column);
}

}  // namespace

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(c));
      out += hex;
    } else {
      out += c;
    }
  }
  return out + '"';
}

std::string lowercase(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

bool is_route_host(std::string_view host) {
  return host == "*" || is_host_name(host) || is_ip_literal(host) ||
         (host.starts_with("*.") && is_host_name(host.substr(2)));
}

bool is_route_path(std::string_view path) {
  return path.starts_with('/') && path.find_first_of("?# \t\r\n") == std::string_view::npos;
}

bool is_origin(std::string_view origin) {
  if (origin == "null") return true;
  const auto scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return false;
  const auto authority = origin.substr(scheme_end + 3);
  return !authority.empty() && authority.find_first_of("/?# \t") == std::string_view::npos;
}

TableReader::TableReader(const std::string& file, const toml::table& table, std::string section,
                         std::span<const std::string_view> allowed_keys, bool single_table)
    : file_(file), table_(table), section_(std::move(section)), single_table_(single_table) {
  reject_unknown_keys(allowed_keys);
}

SourcePosition TableReader::position() const {
  const auto& begin = table_.source().begin;
  return {file_, static_cast<int>(begin.line), static_cast<int>(begin.column)};
}

SourcePosition TableReader::value_position(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return position();
  return {file_, static_cast<int>(node->source().begin.line),
          static_cast<int>(node->source().begin.column)};
}

void TableReader::fail_at(const toml::source_region& where, std::string message) const {
  throw ConfigError{file_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column),
                    std::move(message)};
}

void TableReader::fail_expected(std::string_view key, std::string_view expected,
                                std::string_view note) const {
  const toml::node& node = *find(key);
  fail_at(node.source(), name(key) + ": expected " + std::string(expected) + ", got " +
                             describe(node) + std::string(note));
}

void TableReader::require(std::string_view key) const {
  if (!find(key))
    fail_at(table_.source(), table_name() + " is missing the required key " + quoted(key));
}

bool TableReader::string(std::string_view key, std::string* out) const {
  const toml::node* node = find(key);
  if (!node) return false;
  if (!node->is_string()) fail_expected(key, "a string");
  *out = node->as_string()->get();
  return true;
}

bool TableReader::boolean(std::string_view key, bool* out) const {
  const toml::node* node = find(key);
  if (!node) return false;
  if (!node->is_boolean()) fail_expected(key, "true or false");
  *out = node->as_boolean()->get();
  return true;
}

const toml::table* TableReader::table(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return nullptr;
  if (!node->is_table()) fail_expected(key, "a table ([" + name(key) + "])");
  return node->as_table();
}

void TableReader::duration(std::string_view key, Duration* out, bool must_be_positive) const {
  const toml::node* node = find(key);
  if (!node) return;
  std::optional<Duration> value;
  if (node->is_string()) value = parse_duration(node->as_string()->get());
  if (!value) fail_expected(key, R"(a duration like "30s" or "250ms")");
  if (must_be_positive && value->count() == 0) fail_expected(key, "a duration greater than 0");
  *out = *value;
}

std::optional<std::int64_t> TableReader::integer_value(std::string_view key, std::int64_t min,
                                                       std::int64_t max) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  const auto in_range = [&](std::int64_t v) { return v >= min && v <= max; };
  if (!node->is_integer() || !in_range(node->as_integer()->get()))
    fail_expected(key, "an integer in " + std::to_string(min) + ".." + std::to_string(max));
  return node->as_integer()->get();
}

std::optional<std::uint64_t> TableReader::size_value(std::string_view key, std::uint64_t min,
                                                     std::uint64_t max) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  std::optional<std::uint64_t> value;
  if (node->is_string()) value = parse_size(node->as_string()->get());
  if (node->is_integer() && node->as_integer()->get() >= 0)
    value = static_cast<std::uint64_t>(node->as_integer()->get());
  if (!value) fail_expected(key, R"(a size like "16KiB" or a number of bytes)");
  if (*value >= min && *value <= max) return value;
  if (max == kNoLimit && min == 1) fail_expected(key, "a size greater than 0");
  if (max == kNoLimit) fail_expected(key, "a size of at least " + format_size(min));
  fail_expected(key, "a size in " + format_size(min) + ".." + format_size(max));
}

std::vector<std::string> TableReader::strings(std::string_view key, std::string_view expected,
                                              bool (*check)(std::string_view)) const {
  std::vector<std::string> result;
  const toml::node* node = find(key);
  if (!node) return result;
  if (!node->is_array()) fail_expected(key, "an array of strings");
  const toml::array& array = *node->as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const toml::node& element = array[i];
    if (!element.is_string() || !check(element.as_string()->get()))
      fail_at(element.source(), name(key) + "[" + std::to_string(i) + "]: expected " +
                                    std::string(expected) + ", got " + describe(element));
    result.push_back(element.as_string()->get());
  }
  return result;
}

std::vector<const toml::table*> TableReader::tables(std::string_view key) const {
  const std::string header = "[[" + std::string(key) + "]]";
  const toml::node* node = find(key);
  if (!node) throw ConfigError{file_, 0, 0, "at least one " + header + " is required"};
  const toml::array* array = node->as_array();
  // is_array_of_tables() is false for an empty array too: at least one is required.
  if (!array || !array->is_array_of_tables())
    fail_expected(key, "an array of tables (" + header + "), at least one");
  std::vector<const toml::table*> result;
  for (const toml::node& element : *array) result.push_back(element.as_table());
  return result;
}

std::string TableReader::name(std::string_view key) const {
  return section_.empty() ? std::string(key) : section_ + "." + std::string(key);
}

std::string TableReader::table_name() const {
  if (section_.empty()) return "the top level";
  return single_table_ ? "[" + section_ + "]" : "[[" + section_ + "]]";
}

// Reports the first unknown key in file order, listing the allowed ones and, for a near
// miss, the likely intended key.
void TableReader::reject_unknown_keys(std::span<const std::string_view> allowed) const {
  const toml::key* unknown = nullptr;
  for (const auto& [key, value] : table_) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    if (!unknown || source_before(key.source(), unknown->source())) unknown = &key;
  }
  if (!unknown) return;
  std::string list;
  std::string_view closest;
  std::size_t closest_distance = 3;  // suggest only for typos, not for unrelated words
  for (std::string_view key : allowed) {
    list += (list.empty() ? "" : ", ") + std::string(key);
    if (const auto d = edit_distance(key, unknown->str()); d < closest_distance) {
      closest = key;
      closest_distance = d;
    }
  }
  std::string message = "unknown key " + quoted(unknown->str()) +
                        (section_.empty() ? " at " : " in ") + table_name() + " (allowed: " + list +
                        ")";
  if (!closest.empty()) message += "; did you mean " + quoted(closest) + "?";
  fail_at(unknown->source(), std::move(message));
}

}  // namespace wsgate::conf::detail
