// The checks a config value goes through on its way from TOML to Config: TableReader
// validates one table's keys, value types and ranges; the predicates below check the forms
// of route hosts, paths and origins. Internal to the loader (config_loader.cc): everything
// here throws ConfigError, which load_config() turns into LoadResult::error.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "conf/config.h"
#include "conf/config_loader.h"

namespace wsgate::conf::detail {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kNoLimit = UINT64_MAX;

std::string quoted(std::string_view text);  // "text" with '"', '\' and controls escaped
std::string lowercase(std::string text);    // ASCII only
// A value as a message shows it: strings quoted, others with their type ("integer 3").
std::string describe(const toml::node& node);

// "*", "example.com", "*.example.com" (any subdomain) or an IP address; lowercase input.
bool is_route_host(std::string_view host);
// An origin-form path prefix (RFC 9112 3.2.1): starts with "/", no query, fragment or space.
bool is_route_path(std::string_view path);
// RFC 6454 7: "null" or scheme "://" host [":" port], with no path (not even a "/").
bool is_origin(std::string_view origin);

// Reads one TOML table whose set of keys is fixed. The constructor rejects unknown keys;
// the getters convert and range-check one value each, leave `*out` (the default) alone
// when the key is absent, and throw ConfigError at the value's position otherwise.
// Messages name the value as "<section>.<key>" ("route.idle_timeout").
class TableReader {
 public:
  // `section` is "" for the top level, else the array-of-tables name ("route"), or the
  // name of a plain table ("admin") when `single_table`. `file` and `table` must outlive
  // the reader.
  TableReader(const std::string& file, const toml::table& table, std::string section,
              std::span<const std::string_view> allowed_keys, bool single_table = false);

  [[nodiscard]] SourcePosition position() const;  // the table's own position (its [[header]])
  // Where `key`'s value is, or position() when the key is absent.
  [[nodiscard]] SourcePosition value_position(std::string_view key) const;
  [[nodiscard]] const toml::node* find(std::string_view key) const { return table_.get(key); }
  [[nodiscard]] const toml::source_region& table_source() const { return table_.source(); }

  [[noreturn]] void fail_at(const toml::source_region& where, std::string message) const;
  // "<section>.<key>: expected <expected>, got <the value found><note>"; the key must exist.
  [[noreturn]] void fail_expected(std::string_view key, std::string_view expected,
                                  std::string_view note = {}) const;

  void require(std::string_view key) const;  // absent -> error at the table's position
  bool string(std::string_view key, std::string* out) const;  // true when present
  bool boolean(std::string_view key, bool* out) const;        // true when present
  // A sub-table ([section.key]); nullptr when absent, an error when not a table.
  [[nodiscard]] const toml::table* table(std::string_view key) const;
  void duration(std::string_view key, Duration* out, bool must_be_positive) const;

  template <class Int>
  void integer(std::string_view key, Int* out, std::int64_t min, std::int64_t max) const {
    if (auto value = integer_value(key, min, max)) *out = static_cast<Int>(*value);
  }
  // A size is a string with a unit ("16KiB") or a non-negative integer count of bytes.
  template <class Size>
  void size(std::string_view key, Size* out, std::uint64_t min, std::uint64_t max) const {
    if (auto value = size_value(key, min, max)) *out = static_cast<Size>(*value);
  }

  // An array of strings, each accepted by `check` (else an error at that element saying
  // "expected <expected>"). Absent -> empty.
  std::vector<std::string> strings(std::string_view key, std::string_view expected,
                                   bool (*check)(std::string_view)) const;
  // The tables of an array of tables ([[key]]); absent or empty is an error.
  [[nodiscard]] std::vector<const toml::table*> tables(std::string_view key) const;

 private:
  [[nodiscard]] std::string name(std::string_view key) const;
  [[nodiscard]] std::string table_name() const;
  [[nodiscard]] std::optional<std::int64_t> integer_value(std::string_view key, std::int64_t min,
                                                          std::int64_t max) const;
  [[nodiscard]] std::optional<std::uint64_t> size_value(std::string_view key, std::uint64_t min,
                                                        std::uint64_t max) const;
  void reject_unknown_keys(std::span<const std::string_view> allowed) const;

  const std::string& file_;
  const toml::table& table_;
  std::string section_;
  bool single_table_ = false;  // [section] rather than [[section]]
};

// A [[route]]'s ping_interval, ping_timeout, ping_to, max_message_rate and
// max_message_burst (config_keepalive.cc); reads idle_timeout from `route`, so call it
// after that key.
void read_route_keepalive(const TableReader& r, Route* route);

// Paths in a config file are relative to the file's folder, not to the working directory.
std::string resolve_path(const std::string& config_file, const std::string& path);

// [route.auth] (config_auth.cc). Key files are resolved here and loaded by tls/
// (tls/jwt_keys.h); the forward auth's upstream is checked by the caller.
RouteAuth read_route_auth(const std::string& file, const toml::table& table);

// [listener.tls] and [upstream.tls] (config_tls.cc). Relative file paths are resolved
// against the folder of `file`; files are not opened here (tls/ loads them).
ListenerTls read_listener_tls(const std::string& file, const toml::table& table);
UpstreamTls read_upstream_tls(const std::string& file, const toml::table& table);

}  // namespace wsgate::conf::detail
