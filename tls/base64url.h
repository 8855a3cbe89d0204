// base64url without padding (RFC 4648 5, as JWS and JWK use it: RFC 7515 2, RFC 7517),
// shared by the JWK loader (tls/jwt_keys.h) and the JWT verifier (proxy/auth/jwt.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wsgate::tls {

// The bytes `text` encodes, or nullopt for anything else: a character outside
// [A-Za-z0-9_-], padding ("="), or a length no encoding has (4n+1), or non-zero bits
// left over in the last character (so each byte string has exactly one encoding).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace wsgate::tls
