// Reading the [connect] table: the CONNECT tunnels' allow-list ([[connect.allow]]),
// proxy users ([[connect.user]]) and timeouts. Internal to the loader; every problem
// throws ConfigError at the value at fault.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

#include <toml++/toml.h>

namespace wsgate::conf::detail {

Connect read_connect(const std::string& file, const toml::table& table);

// "10.0.0.0/8", "fd00::/8", "192.0.2.7" (a single address: /32 or /128). The address
// must be the network's first one (no host bits set beyond the prefix).
std::optional<IpNetwork> parse_cidr(std::string_view text);

// "pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>", the form --hash-password
// prints (checked for shape here; verified in proxy/connect/password_hash.cc).
bool is_password_hash(std::string_view text);

}  // namespace wsgate::conf::detail
