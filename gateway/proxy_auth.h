// Proxy authentication of CONNECT requests: Proxy-Authorization: Basic (RFC 9110 11.7.1,
// RFC 7617) against the [[connect.user]] list. 407 with Proxy-Authenticate when missing
// or wrong. The header's value is never logged or forwarded.
//
// PBKDF2 costs milliseconds of the worker's loop, so each worker thread keeps a small
// bounded cache of credentials it has verified: keyed by SHA-256 of (stored hash, user,
// password), never the plaintext; a changed hash in a reloaded config misses the cache.
// Failed attempts are not cached (each costs one PBKDF2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace wsgate::gateway {

struct ProxyAuthResult {
  bool ok = false;
  std::string user;    // ok: the authenticated user name
  std::string reason;  // !ok: one line for the 407 body (never echoes the credentials)
};

// `header`: the Proxy-Authorization value, or null when absent.
ProxyAuthResult check_proxy_authorization(const std::vector<conf::ConnectUser>& users,
                                          const std::string_view* header);

inline constexpr std::string_view kProxyAuthenticate = R"(Basic realm="wsgate", charset="UTF-8")";

}  // namespace wsgate::gateway
