// JSON Web Tokens and JWKS documents (proxy/auth/jwt.h, tls/jwt_keys.h), from clients
// and key files the gateway does not control. The first byte picks the input's use:
//   0: a token, verified with a fixed key set (an HS256 secret and an EC P-256 key);
//   1: a JWKS document;
//   2: base64url text.
// Properties: no crash or sanitizer report; a refusal's reason is one line; a verified
// token has object claims; a verified token with any byte of its signature changed no
// longer verifies; decoded base64url re-encodes to the same text.
#include <openssl/evp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/auth/jwt.h"
#include "tests/fuzz/fuzz_check.h"
#include "tls/base64url.h"
#include "tls/jwt_keys.h"

namespace {

using wsgate::fuzz::is_one_line;
namespace tls = wsgate::tls;
namespace proxy = wsgate::proxy;

// The secret the seed tokens under tests/fuzz/corpus/jwt are signed with.
constexpr std::string_view kSecret = "fuzz-secret-0123456789abcdef-0123456789";

const tls::JwtKeySet& key_set() {
  static const tls::JwtKeySet set = [] {
    tls::JwtKeySet s;
    s.keys.push_back({"h", "HS256", nullptr, std::string(kSecret)});
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    s.keys.push_back({"e", "ES256", std::shared_ptr<EVP_PKEY>(ec, EVP_PKEY_free), {}});
    return s;
  }();
  return set;
}

std::string encode(std::string_view bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int held = 0;
  for (const unsigned char c : bytes) {
    bits = (bits << 8) | c;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out.push_back(abc[(bits >> held) & 63]);
    }
  }
  if (held > 0) out.push_back(abc[(bits << (6 - held)) & 63]);
  return out;
}

void fuzz_token(std::string_view token) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  proxy::JwtRules rules;
  rules.clock_skew = std::chrono::seconds(30);
  const proxy::JwtResult r = proxy::verify_jwt(token, key_set(), rules, now);
  if (!r.ok()) {
    FUZZ_CHECK(is_one_line(r.reason));
    return;
  }
  FUZZ_CHECK(r.claims.is_object());
  for (const auto& [name, value] : r.claims.items())
    (void)proxy::claim_as_field_value(r.claims, name);
  // Any change to the signature's bytes breaks it.
  const auto dot = token.rfind('.');
  std::optional<std::string> sig = tls::base64url_decode(token.substr(dot + 1));
  FUZZ_CHECK(sig.has_value());
  for (std::size_t i = 0; i < sig->size(); i += 7) {
    std::string changed = *sig;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    const std::string forged = std::string(token.substr(0, dot + 1)) + encode(changed);
    FUZZ_CHECK(!proxy::verify_jwt(forged, key_set(), rules, now).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      fuzz_token(input);
      break;
    case 1: {
      std::string error;
      const auto set = tls::parse_jwks(input, error);
      if (!set) FUZZ_CHECK(is_one_line(error));
      break;
    }
    default:
      if (const auto bytes = tls::base64url_decode(input)) FUZZ_CHECK(encode(*bytes) == input);
      break;
  }
  return 0;
}
