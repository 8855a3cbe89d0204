// Loads a TOML file into a validated, immutable Config. Nothing is applied here: the
// caller publishes the snapshot only if loading succeeded completely.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace wsgate::conf {

// A problem found in a config file: "file:line:column: message".
struct ConfigError {
  std::string file;
  int line = 0;         // 1-based; 0 when the problem has no position (e.g. unreadable file)
  int column = 0;       // 1-based; 0 as above
  std::string message;  // says what was found and what was expected

  std::string to_string() const;
};

struct LoadResult {
  ConfigPtr config;                  // set on success
  std::optional<ConfigError> error;  // set on failure (the first error found)
  bool ok() const { return config != nullptr; }
};

// Reads and validates `path`. Unknown keys, wrong types, bad durations/sizes/addresses,
// routes naming missing upstreams, duplicate names: all errors with their position.
LoadResult load_config(const std::string& path);

// Same, from text (tests); `file_name` is used in error messages.
LoadResult load_config_text(std::string_view text, const std::string& file_name);

}  // namespace wsgate::conf
