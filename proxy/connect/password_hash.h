// Salted password hashes for proxy users: PBKDF2-HMAC-SHA256 (RFC 8018 5.2) through
// OpenSSL, stored as "pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>".
#pragma once

#include <string>
#include <string_view>

namespace wsgate::proxy {

inline constexpr unsigned kDefaultPbkdf2Iterations = 100000;

// A new hash of `password` with a random 16-byte salt.
std::string hash_password(std::string_view password,
                          unsigned iterations = kDefaultPbkdf2Iterations);

// The iteration count of a stored hash, or 0 when `stored` is malformed.
unsigned hash_iterations(std::string_view stored);

// True when `password` matches `stored` (compared in constant time). A malformed
// `stored` never matches.
bool verify_password(std::string_view stored, std::string_view password);

}  // namespace wsgate::proxy
