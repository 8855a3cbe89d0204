// Keys are made here with OpenSSL at test time and tokens signed with them; the
// integration test (tests/integration/test_jwt_auth.py) signs with the openssl command.
#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>
#include <memory>
#include <string>

#include "proxy/auth/jwt.h"
#include "tls/base64url.h"
#include "tls/jwt_keys.h"

using namespace wsgate;
using proxy::JwtError;

namespace {

using Clock = std::chrono::system_clock;
const Clock::time_point kNow = Clock::time_point(std::chrono::seconds(1'800'000'000));

std::string b64url(std::string_view bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t bits = 0;
  int held = 0;
  for (unsigned char c : bytes) {
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

std::shared_ptr<EVP_PKEY> keygen(const char* type, const char* param = nullptr) {
  EVP_PKEY* k = nullptr;
  if (std::string_view(type) == "RSA") {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  } else if (param != nullptr) {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, type, param);
  } else {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

std::string sign(EVP_PKEY* key, const EVP_MD* md, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, md, nullptr, key);
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

// DER ECDSA -> R || S (RFC 7518 3.4).
std::string der_to_raw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string hmac(const std::string& secret, std::string_view data) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

struct Keys {
  std::shared_ptr<EVP_PKEY> rsa = keygen("RSA");
  std::shared_ptr<EVP_PKEY> ec = keygen("EC", "P-256");
  std::shared_ptr<EVP_PKEY> ed = keygen("ED25519");
  std::string secret = std::string(32, 's');
  tls::JwtKeySet set;
  Keys() {
    set.keys.push_back({"r1", "RS256", rsa, {}});
    set.keys.push_back({"e1", "ES256", ec, {}});
    set.keys.push_back({"d1", "EdDSA", ed, {}});
    set.keys.push_back({"h1", "HS256", nullptr, secret});
  }
  std::string token(const std::string& alg, const std::string& payload,
                    const std::string& header_extra = "") const {
    const std::string header = R"({"alg":")" + alg + R"(","typ":"JWT")" + header_extra + "}";
    const std::string signing = b64url(header) + "." + b64url(payload);
    std::string sig;
    if (alg == "RS256") sig = sign(rsa.get(), EVP_sha256(), signing);
    if (alg == "ES256") sig = der_to_raw(sign(ec.get(), EVP_sha256(), signing));
    if (alg == "EdDSA") sig = sign(ed.get(), nullptr, signing);
    if (alg == "HS256") sig = hmac(secret, signing);
    return signing + "." + b64url(sig);
  }
};

const Keys& keys() {
  static const Keys k;
  return k;
}

proxy::JwtResult verify(const std::string& token, const proxy::JwtRules& rules = {}) {
  return proxy::verify_jwt(token, keys().set, rules, kNow);
}

}  // namespace

TEST_CASE("base64url decodes the unpadded alphabet and nothing else") {
  CHECK(tls::base64url_decode("aGVsbG8") == std::optional<std::string>("hello"));
  CHECK(tls::base64url_decode("").value().empty());
  CHECK(tls::base64url_decode("-_8") == std::optional<std::string>("\xfb\xff"));
  CHECK_FALSE(tls::base64url_decode("aGVsbG8=").has_value());  // padding
  CHECK_FALSE(tls::base64url_decode("aGV+bG8").has_value());   // base64, not base64url
  CHECK_FALSE(tls::base64url_decode("a").has_value());         // 4n+1 characters
  CHECK_FALSE(tls::base64url_decode("aGVsbG9").has_value());   // non-zero pad bits
}

TEST_CASE("a JWT signed with each supported algorithm verifies and yields its claims") {
  for (const char* alg : {"RS256", "ES256", "EdDSA", "HS256"}) {
    CAPTURE(alg);
    const proxy::JwtResult r = verify(keys().token(alg, R"({"sub":"alice","exp":1800000060})"));
    REQUIRE(r.ok());
    CHECK(r.claims["sub"] == "alice");
    REQUIRE(r.expires.has_value());
    CHECK(r.expires->time_since_epoch() == std::chrono::seconds(1'800'000'060));
  }
}

TEST_CASE("a JWT is refused for each way it can be wrong") {
  const Keys& k = keys();
  SUBCASE("alg none, with or without a signature") {
    const std::string unsigned_token = b64url(R"({"alg":"none"})") + "." + b64url("{}") + ".";
    CHECK(verify(unsigned_token).error == JwtError::Algorithm);
    CHECK(verify(b64url(R"({"alg":"none"})") + "." + b64url("{}") + ".AAAA").error ==
          JwtError::Algorithm);
  }
  SUBCASE("HS256 signed with the RSA public key's PEM (algorithm confusion)") {
    const std::string signing = b64url(R"({"alg":"HS256"})") + "." + b64url(R"({"sub":"x"})");
    const std::string forged = signing + "." + b64url(hmac(pem_of(k.rsa.get()), signing));
    tls::JwtKeySet rsa_only;
    rsa_only.keys.push_back({"", "RS256", k.rsa, {}});
    CHECK(proxy::verify_jwt(forged, rsa_only, {}, kNow).error == JwtError::UnknownKey);
    CHECK(verify(forged).error == JwtError::BadSignature);  // not the HS256 secret
  }
  SUBCASE("a tampered payload") {
    std::string t = k.token("RS256", R"({"sub":"alice"})");
    const auto d1 = t.find('.'), d2 = t.rfind('.');
    t = t.substr(0, d1 + 1) + b64url(R"({"sub":"admin"})") + t.substr(d2);
    CHECK(verify(t).error == JwtError::BadSignature);
  }
  SUBCASE("a signature of another key of the same algorithm") {
    tls::JwtKeySet other;
    other.keys.push_back({"", "ES256", keygen("EC", "P-256"), {}});
    CHECK(proxy::verify_jwt(k.token("ES256", "{}"), other, {}, kNow).error ==
          JwtError::BadSignature);
  }
  SUBCASE("expiry and not-before, with the clock skew") {
    proxy::JwtRules skew;
    skew.clock_skew = std::chrono::seconds(30);
    CHECK(verify(k.token("HS256", R"({"exp":1800000000})")).error == JwtError::Expired);
    CHECK(verify(k.token("HS256", R"({"exp":1799999990})"), skew).ok());
    CHECK(verify(k.token("HS256", R"({"exp":1799999960})"), skew).error == JwtError::Expired);
    CHECK(verify(k.token("HS256", R"({"nbf":1800000010})")).error == JwtError::NotYetValid);
    CHECK(verify(k.token("HS256", R"({"nbf":1800000010})"), skew).ok());
    CHECK(verify(k.token("HS256", R"({"exp":"tomorrow"})")).error == JwtError::Malformed);
    CHECK(verify(k.token("HS256", R"({"exp":1e300})")).ok());  // clamped, far future
  }
  SUBCASE("issuer, audience and required claims") {
    proxy::JwtRules rules;
    rules.issuer = "https://idp.example";
    rules.audiences = {"chat", "api"};
    rules.required_claims = {"sub"};
    CHECK(verify(k.token("ES256", R"({"iss":"https://idp.example","aud":"chat","sub":"a"})"), rules)
              .ok());
    CHECK(verify(k.token("ES256", R"({"iss":"https://idp.example","aud":["x","api"],"sub":"a"})"),
                 rules)
              .ok());
    CHECK(
        verify(k.token("ES256", R"({"iss":"https://evil","aud":"chat","sub":"a"})"), rules).error ==
        JwtError::WrongIssuer);
    CHECK(
        verify(k.token("ES256", R"({"iss":"https://idp.example","aud":"other","sub":"a"})"), rules)
            .error == JwtError::WrongAudience);
    CHECK(verify(k.token("ES256", R"({"iss":"https://idp.example","aud":"chat"})"), rules).error ==
          JwtError::MissingClaim);
  }
  SUBCASE("an algorithm the route does not accept") {
    proxy::JwtRules rules;
    rules.algorithms = {"RS256"};
    CHECK(verify(k.token("HS256", "{}"), rules).error == JwtError::Algorithm);
    CHECK(verify(k.token("RS256", "{}"), rules).ok());
  }
  SUBCASE("kid picks its key, an unknown kid falls back to the alg's keys") {
    CHECK(verify(k.token("RS256", "{}", R"(,"kid":"r1")")).ok());
    CHECK(verify(k.token("RS256", "{}", R"(,"kid":"nope")")).ok());
    CHECK(verify(k.token("RS256", "{}", R"(,"kid":7)")).error == JwtError::Malformed);
  }
  SUBCASE("malformed structure") {
    CHECK(verify("").error == JwtError::Malformed);
    CHECK(verify("a.b").error == JwtError::Malformed);
    CHECK(verify("a.b.c.d").error == JwtError::Malformed);
    CHECK(verify(b64url("[]") + "." + b64url("{}") + ".AAAA").error == JwtError::Malformed);
    CHECK(verify(k.token("HS256", "{}", R"(,"crit":["exp"])")).error == JwtError::Malformed);
    CHECK(verify(k.token("HS256", "[1]")).error == JwtError::Malformed);
    CHECK(verify(k.token("HS256", std::string(40, '[') + std::string(40, ']'))).error ==
          JwtError::Malformed);
    CHECK(verify(std::string(proxy::kMaxTokenBytes + 1, 'a')).error == JwtError::Malformed);
    std::string t = k.token("HS256", "{}");
    CHECK(verify(t + "=").error == JwtError::Malformed);
  }
}

TEST_CASE("reasons never quote the token's values") {
  proxy::JwtRules rules;
  rules.issuer = "good";
  const proxy::JwtResult r = verify(keys().token("HS256", R"({"iss":"SECRET-ISSUER"})"), rules);
  CHECK(r.error == JwtError::WrongIssuer);
  CHECK(r.reason.find("SECRET") == std::string::npos);
}

TEST_CASE("claims become header values: strings as they are, others as JSON") {
  const nlohmann::json claims = nlohmann::json::parse(R"({"sub":"alice","n":3,"roles":["a","b"]})");
  CHECK(proxy::claim_as_field_value(claims, "sub") == std::optional<std::string>("alice"));
  CHECK(proxy::claim_as_field_value(claims, "n") == std::optional<std::string>("3"));
  CHECK(proxy::claim_as_field_value(claims, "roles") == std::optional<std::string>(R"(["a","b"])"));
  CHECK_FALSE(proxy::claim_as_field_value(claims, "missing").has_value());
}

TEST_CASE("JWKS documents give RSA, EC, Ed25519 and oct keys bound to their algorithm") {
  const Keys& k = keys();
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  EVP_PKEY_get_bn_param(k.rsa.get(), OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(k.rsa.get(), OSSL_PKEY_PARAM_RSA_E, &e);
  std::string nb(static_cast<size_t>(BN_num_bytes(n)), '\0'),
      eb(static_cast<size_t>(BN_num_bytes(e)), '\0');
  BN_bn2bin(n, reinterpret_cast<unsigned char*>(nb.data()));
  BN_bn2bin(e, reinterpret_cast<unsigned char*>(eb.data()));
  BN_free(n);
  BN_free(e);
  unsigned char pub[80];
  size_t pub_len = 0;
  EVP_PKEY_get_octet_string_param(k.ec.get(), OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &pub_len);
  REQUIRE(pub_len == 65);
  unsigned char ed[32];
  size_t ed_len = sizeof ed;
  EVP_PKEY_get_raw_public_key(k.ed.get(), ed, &ed_len);
  const std::string jwks =
      R"({"keys":[{"kty":"RSA","kid":"r1","use":"sig","n":")" + b64url(nb) + R"(","e":")" +
      b64url(eb) + R"("},{"kty":"EC","crv":"P-256","kid":"e1","x":")" +
      b64url(std::string(reinterpret_cast<char*>(pub) + 1, 32)) + R"(","y":")" +
      b64url(std::string(reinterpret_cast<char*>(pub) + 33, 32)) +
      R"("},{"kty":"OKP","crv":"Ed25519","kid":"d1","x":")" +
      b64url(std::string(reinterpret_cast<char*>(ed), 32)) + R"("},{"kty":"oct","kid":"h1","k":")" +
      b64url(k.secret) + R"("},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},)" +
      R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]})";
  std::string error;
  const std::optional<tls::JwtKeySet> set = tls::parse_jwks(jwks, error);
  REQUIRE_MESSAGE(set.has_value(), error);
  REQUIRE(set->keys.size() == 4);  // the encryption key and the P-384 key are skipped
  for (const char* alg : {"RS256", "ES256", "EdDSA", "HS256"}) {
    CAPTURE(alg);
    CHECK(proxy::verify_jwt(k.token(alg, "{}"), *set, {}, kNow).ok());
  }
  CHECK_FALSE(tls::parse_jwks("{}", error).has_value());
  CHECK_FALSE(
      tls::parse_jwks(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})", error)
          .has_value());
  CHECK(error.find("keys[0]") != std::string::npos);
  CHECK_FALSE(tls::parse_jwks(R"({"keys":[{"kty":"oct","k":"c2hvcnQ"}]})", error).has_value());
}

TEST_CASE("PEM public keys: RSA of 2048 bits or more, P-256 and Ed25519") {
  std::string error;
  CHECK(tls::parse_pem_public_key(pem_of(keys().rsa.get()), error)->alg == "RS256");
  CHECK(tls::parse_pem_public_key(pem_of(keys().ec.get()), error)->alg == "ES256");
  CHECK(tls::parse_pem_public_key(pem_of(keys().ed.get()), error)->alg == "EdDSA");
  auto small = std::shared_ptr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}),
                                         EVP_PKEY_free);
  CHECK_FALSE(tls::parse_pem_public_key(pem_of(small.get()), error).has_value());
  CHECK(error.find("2048") != std::string::npos);
  auto p384 = keygen("EC", "P-384");
  CHECK_FALSE(tls::parse_pem_public_key(pem_of(p384.get()), error).has_value());
  CHECK_FALSE(tls::parse_pem_public_key("not a key", error).has_value());
}
