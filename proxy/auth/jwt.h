// JSON Web Token verification (RFC 7519 7.2, JWS compact serialization RFC 7515 5.2): a
// pure function over the token's bytes, the route's keys and rules, and the time; no
// I/O, so it is unit-tested and fuzzed alone (tests/fuzz/jwt_fuzz.cc).
//
//   header.payload.signature, each base64url without padding (at most kMaxTokenBytes)
//   header: a JSON object; "alg" one of RS256, ES256, EdDSA, HS256 (never "none",
//           RFC 7518 3.6) and allowed by the route; "crit" refused (RFC 7515 4.1.11:
//           no extension is understood); "kid" picks the key when present
//   signature: verified with a key bound to that same alg (tls/jwt_keys.h)
//   payload: a JSON object; exp and nbf (NumericDate, RFC 7519 4.1.4-5) with the clock
//           skew; iss, aud (a string or an array, RFC 7519 4.1.3) and required claims
//
// The one-line reasons never quote the token or any of its values.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/jwt_keys.h"

namespace wsgate::proxy {

inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;

enum class JwtError {
  None,
  Malformed,      // not three base64url parts of JSON objects, or over kMaxTokenBytes
  Algorithm,      // "none", an unsupported alg, or one the route does not accept
  UnknownKey,     // no key for the alg (and kid)
  BadSignature,   // the signature does not verify
  Expired,        // exp + skew is past
  NotYetValid,    // nbf - skew is still ahead
  WrongIssuer,    // iss is not the route's issuer
  WrongAudience,  // aud names none of the route's audiences
  MissingClaim,   // a required claim is absent
  UnusableClaim,  // (AuthStep) a claim that cannot be passed as a header value
};

struct JwtRules {
  std::vector<std::string> algorithms;  // empty: any the keys support
  std::string issuer;                   // empty: not checked
  std::vector<std::string> audiences;   // empty: not checked
  std::chrono::seconds clock_skew{0};
  std::vector<std::string> required_claims;
};

struct JwtResult {
  JwtError error = JwtError::Malformed;
  std::string reason;     // one line, for the refusal and the log
  nlohmann::json claims;  // the payload, once verified
  std::optional<std::chrono::system_clock::time_point> expires;  // exp, when present
  bool ok() const { return error == JwtError::None; }
};

JwtResult verify_jwt(std::string_view token, const tls::JwtKeySet& keys, const JwtRules& rules,
                     std::chrono::system_clock::time_point now);

// A claim as a header field value: a string as it is, anything else as compact JSON;
// nullopt when absent.
std::optional<std::string> claim_as_field_value(const nlohmann::json& claims,
                                                std::string_view claim);

}  // namespace wsgate::proxy
