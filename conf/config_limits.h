// [limits] (config_limits.cc): connection limits for the whole process and per client
// address. Internal to the loader; throws ConfigError at the value's position.
#pragma once

#include <string>

#include <toml++/toml.h>

#include "conf/config.h"

namespace wsgate::conf::detail {

Limits read_limits(const std::string& file, const toml::table& table);

}  // namespace wsgate::conf::detail
