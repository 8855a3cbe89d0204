#include "proxy/auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "tls/base64url.h"

namespace wsgate::proxy {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::system_clock;

JwtResult fail(JwtError error, std::string reason) {
  JwtResult r;
  r.error = error;
  r.reason = std::move(reason);
  return r;
}

// Nesting deeper than this is refused before parsing: no claim needs it, and printing
// or freeing a deep value recurses.
constexpr int kMaxJsonDepth = 32;

bool shallow(std::string_view json) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// A base64url part holding a JSON object, or nullopt.
std::optional<Json> json_object(std::string_view part) {
  std::optional<std::string> bytes = tls::base64url_decode(part);
  if (!bytes || !shallow(*bytes)) return std::nullopt;
  Json j = Json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

bool digest_verify(EVP_PKEY* key, const EVP_MD* md, std::string_view signed_part,
                   std::string_view sig) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(signed_part.data()),
                          signed_part.size()) == 1;
}

// RFC 7518 3.4: an ES256 signature is R || S, 32 bytes each; OpenSSL wants DER.
bool es256_verify(EVP_PKEY* key, std::string_view signed_part, std::string_view sig) {
  if (sig.size() != 64) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(p, 32, nullptr);
  BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
  if (ecdsa == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(ecdsa, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return false;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(ecdsa, &der);
  ECDSA_SIG_free(ecdsa);
  if (len <= 0) return false;
  const bool ok = digest_verify(
      key, EVP_sha256(), signed_part,
      std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return ok;
}

// RFC 7518 3.2: HMAC SHA-256, compared in constant time.
bool hs256_verify(const std::string& secret, std::string_view signed_part, std::string_view sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
           &len) == nullptr)
    return false;
  return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
}

bool verify_with(const tls::JwtKey& key, std::string_view signed_part, std::string_view sig) {
  if (key.alg == "HS256") return hs256_verify(key.secret, signed_part, sig);
  if (key.alg == "ES256") return es256_verify(key.pkey.get(), signed_part, sig);
  if (key.alg == "RS256") return digest_verify(key.pkey.get(), EVP_sha256(), signed_part, sig);
  if (key.alg == "EdDSA") return digest_verify(key.pkey.get(), nullptr, signed_part, sig);
  return false;
}

bool supported(std::string_view alg) {
  return alg == "RS256" || alg == "ES256" || alg == "EdDSA" || alg == "HS256";
}

constexpr double kLastDate = 253402300799.0;  // 9999-12-31T23:59:59Z

// RFC 7519 2: NumericDate, seconds since the epoch, possibly with a fraction.
std::optional<double> numeric_date(const Json& claims, const char* name, bool& malformed) {
  const auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>())) {
    malformed = true;
    return std::nullopt;
  }
  // Within years 0..9999, so the value fits every clock type.
  return std::clamp(it->get<double>(), 0.0, kLastDate);
}

bool audience_matches(const Json& aud, const std::vector<std::string>& accepted) {
  const auto accepted_one = [&](const Json& a) {
    return a.is_string() && std::find(accepted.begin(), accepted.end(),
                                      a.get_ref<const std::string&>()) != accepted.end();
  };
  if (aud.is_string()) return accepted_one(aud);
  if (aud.is_array()) return std::any_of(aud.begin(), aud.end(), accepted_one);
  return false;
}

}  // namespace

JwtResult verify_jwt(std::string_view token, const tls::JwtKeySet& keys, const JwtRules& rules,
                     Clock::time_point now) {
  if (token.size() > kMaxTokenBytes) return fail(JwtError::Malformed, "token over 16 KiB");
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail(JwtError::Malformed, "not a JWS compact token (three parts)");
  const std::string_view signed_part = token.substr(0, dot2);
  std::optional<Json> header = json_object(token.substr(0, dot1));
  if (!header) return fail(JwtError::Malformed, "header is not base64url JSON object");

  const auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string())
    return fail(JwtError::Malformed, "header has no \"alg\"");
  const std::string alg = alg_it->get<std::string>();
  // RFC 7518 3.6: an unsecured JWS proves nothing.
  if (!supported(alg)) return fail(JwtError::Algorithm, "algorithm not accepted");
  if (!rules.algorithms.empty() &&
      std::find(rules.algorithms.begin(), rules.algorithms.end(), alg) == rules.algorithms.end())
    return fail(JwtError::Algorithm, "algorithm " + alg + " not accepted by this route");
  // RFC 7515 4.1.11: a critical extension the verifier does not understand fails it.
  if (header->contains("crit")) return fail(JwtError::Malformed, "header has \"crit\"");
  std::string kid;
  if (const auto it = header->find("kid"); it != header->end()) {
    if (!it->is_string()) return fail(JwtError::Malformed, "header \"kid\" is not a string");
    kid = it->get<std::string>();
  }

  std::optional<std::string> sig = tls::base64url_decode(token.substr(dot2 + 1));
  if (!sig || sig->empty()) return fail(JwtError::Malformed, "signature is not base64url");
  // The key is chosen by the server's binding of key to alg, never by the token alone.
  // A "kid" that names one of the keys narrows the choice to it (RFC 7515 4.1.4); one
  // that names none leaves every key of the alg (PEM keys and secrets have no kid).
  const bool kid_known =
      !kid.empty() && std::any_of(keys.keys.begin(), keys.keys.end(), [&](const tls::JwtKey& k) {
        return k.alg == alg && k.kid == kid;
      });
  bool candidate = false;
  bool verified = false;
  for (const tls::JwtKey& key : keys.keys) {
    if (key.alg != alg || (kid_known && key.kid != kid)) continue;
    candidate = true;
    if (verify_with(key, signed_part, *sig)) {
      verified = true;
      break;
    }
  }
  if (!candidate) return fail(JwtError::UnknownKey, "no " + alg + " key for this token");
  if (!verified) return fail(JwtError::BadSignature, "signature does not verify");

  std::optional<Json> claims = json_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims) return fail(JwtError::Malformed, "payload is not base64url JSON object");
  bool malformed = false;
  const std::optional<double> exp = numeric_date(*claims, "exp", malformed);
  const std::optional<double> nbf = numeric_date(*claims, "nbf", malformed);
  if (malformed) return fail(JwtError::Malformed, "exp or nbf is not a NumericDate");
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double skew = static_cast<double>(rules.clock_skew.count());
  // RFC 7519 4.1.4: not accepted on or after exp; 4.1.5: not before nbf.
  if (exp && t >= *exp + skew)
    return fail(JwtError::Expired,
                "expired " + std::to_string(static_cast<long long>(t - *exp)) + " s ago");
  if (nbf && t < *nbf - skew) return fail(JwtError::NotYetValid, "not valid yet (nbf)");
  if (!rules.issuer.empty()) {
    const auto iss = claims->find("iss");
    if (iss == claims->end() || !iss->is_string() ||
        iss->get_ref<const std::string&>() != rules.issuer)
      return fail(JwtError::WrongIssuer, "issuer not accepted");
  }
  if (!rules.audiences.empty()) {
    const auto aud = claims->find("aud");
    if (aud == claims->end() || !audience_matches(*aud, rules.audiences))
      return fail(JwtError::WrongAudience, "audience not accepted");
  }
  for (const std::string& name : rules.required_claims)
    if (!claims->contains(name)) return fail(JwtError::MissingClaim, "claim " + name + " missing");

  JwtResult ok;
  ok.error = JwtError::None;
  if (exp) {
    const auto at =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*exp));
    ok.expires = Clock::time_point(at);
  }
  ok.claims = std::move(*claims);
  return ok;
}

std::optional<std::string> claim_as_field_value(const nlohmann::json& claims,
                                                std::string_view claim) {
  const auto it = claims.find(claim);
  if (it == claims.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  // Compact JSON; invalid UTF-8 in a claim is replaced rather than thrown on.
  return it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace wsgate::proxy
