// ${NAME} in the config's string values, replaced by the environment variable NAME when
// the file is loaded (at start, by -t and at every reload), so that secrets and
// per-host values need not sit in the file: token = "${WSGATE_ADMIN_TOKEN}". Only
// string values are expanded (not keys, numbers or booleans); "$$" is a literal "$"
// (so "$${X}" is the text "${X}"); any other "$" is left as it is. Internal to the loader.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace wsgate::conf::detail {

// The variable's value, or null when it is not set (std::getenv by default).
using EnvLookup = std::function<const char*(const std::string& name)>;

// `text` with every ${NAME} replaced; nullopt with `*error` set (one line naming the
// variable, never its value) for an unset variable, a "${" without "}" or a name that is
// not [A-Za-z_][A-Za-z0-9_]*.
std::optional<std::string> expand_environment(std::string_view text, std::string* error,
                                              const EnvLookup& lookup);

// Expands every string value under `root` in place; throws ConfigError at the value
// that fails.
void expand_environment(const std::string& file, toml::table& root, const EnvLookup& lookup);

}  // namespace wsgate::conf::detail
