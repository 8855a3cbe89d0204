#include "tls/jwt_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "tls/base64url.h"

namespace wsgate::tls {
namespace {

using Json = nlohmann::json;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

// A base64url member of a JWK (RFC 7518 6.2.1, 6.3.1, RFC 8037 2), decoded.
std::optional<std::string> member(const Json& jwk, const char* name, std::string& error) {
  const auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) {
    error = std::string("member \"") + name + "\" missing or not a string";
    return std::nullopt;
  }
  std::optional<std::string> bytes = base64url_decode(it->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) error = std::string("member \"") + name + "\" is not base64url";
  return bytes && !bytes->empty() ? bytes : std::nullopt;
}

std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return own(key);
}

// RFC 7518 6.3.1: the modulus "n" and exponent "e", big-endian unsigned.
std::shared_ptr<EVP_PKEY> rsa_key(const Json& jwk, std::string& error) {
  const auto n = member(jwk, "n", error);
  const auto e = n ? member(jwk, "e", error) : std::nullopt;
  if (!n || !e) return nullptr;
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                           static_cast<int>(n->size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                           static_cast<int>(e->size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (bn_n != nullptr && bn_e != nullptr && bld != nullptr &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
    key = from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (!key) error = "RSA key rejected by OpenSSL";
  return key;
}

// RFC 7518 6.2.1: "crv" P-256 and the point's "x" and "y", 32 bytes each.
std::shared_ptr<EVP_PKEY> ec_key(const Json& jwk, std::string& error) {
  const auto x = member(jwk, "x", error);
  const auto y = x ? member(jwk, "y", error) : std::nullopt;
  if (!x || !y) return nullptr;
  if (x->size() != 32 || y->size() != 32) {
    error = "P-256 coordinates must be 32 bytes";
    return nullptr;
  }
  std::string point = "\x04" + *x + *y;  // SEC 1 2.3.3, uncompressed
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (bld != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
          1)
    key = from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  if (!key) error = "EC point rejected by OpenSSL (not on P-256)";
  return key;
}

// RFC 8037 2: "crv" Ed25519 and the public key "x".
std::shared_ptr<EVP_PKEY> okp_key(const Json& jwk, std::string& error) {
  const auto x = member(jwk, "x", error);
  if (!x) return nullptr;
  auto key = own(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size()));
  if (!key) error = "Ed25519 key rejected by OpenSSL";
  return key;
}

std::string string_member(const Json& jwk, const char* name) {
  const auto it = jwk.find(name);
  return it != jwk.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The "alg" a PEM or JWK key verifies, from its type; "" when unsupported.
std::string alg_of(EVP_PKEY* key, std::string& error) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
      error = "RSA key under " + std::to_string(kMinRsaBits) + " bits";
      return {};
    }
    return "RS256";
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) == 1 &&
        std::string_view(group, len) == "prime256v1")
      return "ES256";
    error = "EC key not on P-256";
    return {};
  }
  if (EVP_PKEY_is_a(key, "ED25519")) return "EdDSA";
  error = "unsupported key type (RSA, EC P-256 or Ed25519)";
  return {};
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot be read";
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

}  // namespace

std::optional<JwtKeySet> parse_jwks(std::string_view json, std::string& error) {
  const Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    error = "not a JWKS document (a JSON object with a \"keys\" array)";
    return std::nullopt;
  }
  JwtKeySet set;
  int index = 0;
  for (const Json& jwk : doc["keys"]) {
    const std::string where = "keys[" + std::to_string(index++) + "]: ";
    if (!jwk.is_object()) {
      error = where + "not an object";
      return std::nullopt;
    }
    const std::string kty = string_member(jwk, "kty");
    const std::string use = string_member(jwk, "use");
    const std::string declared = string_member(jwk, "alg");
    if (!use.empty() && use != "sig") continue;  // RFC 7517 4.2: an encryption key
    JwtKey key;
    key.kid = string_member(jwk, "kid");
    std::string why;
    if (kty == "RSA") {
      key.pkey = rsa_key(jwk, why);
    } else if (kty == "EC" && string_member(jwk, "crv") == "P-256") {
      key.pkey = ec_key(jwk, why);
    } else if (kty == "OKP" && string_member(jwk, "crv") == "Ed25519") {
      key.pkey = okp_key(jwk, why);
    } else if (kty == "oct") {
      if (auto k = member(jwk, "k", why)) key.secret = std::move(*k);
      if (why.empty() && key.secret.size() < kMinHmacSecret)
        why = "HS256 secret under " + std::to_string(kMinHmacSecret) + " bytes";
      if (why.empty()) key.alg = "HS256";
    } else {
      continue;  // a key type or curve no supported algorithm uses
    }
    if (key.pkey) key.alg = alg_of(key.pkey.get(), why);
    if (!why.empty() || key.alg.empty()) {
      error = where + (why.empty() ? "unusable key" : why);
      return std::nullopt;
    }
    // A key bound to another algorithm (RFC 7517 4.4) serves no token we accept.
    if (!declared.empty() && declared != key.alg) continue;
    set.keys.push_back(std::move(key));
  }
  return set;
}

std::optional<JwtKey> parse_pem_public_key(std::string_view pem, std::string& error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* raw = bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (raw == nullptr) {
    error = "no PEM public key (\"-----BEGIN PUBLIC KEY-----\")";
    return std::nullopt;
  }
  JwtKey key;
  key.pkey = own(raw);
  key.alg = alg_of(raw, error);
  if (key.alg.empty()) return std::nullopt;
  return key;
}

std::shared_ptr<const JwtKeySet> load_jwt_keys(const conf::JwtAuth& jwt, std::string& error) {
  auto set = std::make_shared<JwtKeySet>();
  std::string text;
  if (!jwt.jwks_file.empty()) {
    if (!read_file(jwt.jwks_file, text, error)) return nullptr;
    std::optional<JwtKeySet> jwks = parse_jwks(text, error);
    if (!jwks) {
      error = jwt.jwks_file + ": " + error;
      return nullptr;
    }
    set->keys = std::move(jwks->keys);
  }
  for (const std::string& path : jwt.public_key_files) {
    if (!read_file(path, text, error)) return nullptr;
    std::optional<JwtKey> key = parse_pem_public_key(text, error);
    if (!key) {
      error = path + ": " + error;
      return nullptr;
    }
    set->keys.push_back(std::move(*key));
  }
  if (!jwt.hmac_secret_file.empty()) {
    if (!read_file(jwt.hmac_secret_file, text, error)) return nullptr;
    // The file holds the secret's bytes; one final line break (an editor's) is not part.
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.size() < kMinHmacSecret) {
      error = jwt.hmac_secret_file + ": HS256 secret under " + std::to_string(kMinHmacSecret) +
              " bytes (RFC 7518 3.2)";
      return nullptr;
    }
    set->keys.push_back({{}, "HS256", nullptr, text});
  }
  if (set->keys.empty() && jwt.jwks_url.empty()) {
    error = (jwt.jwks_file.empty() ? std::string("the configured key files") : jwt.jwks_file) +
            ": no signing key for RS256, ES256, EdDSA or HS256";
    return nullptr;
  }
  return set;
}

JwtKeySource::JwtKeySource(std::shared_ptr<const JwtKeySet> files, std::string url,
                           std::shared_ptr<const ClientContext> https)
    : files_(std::move(files)), url_(std::move(url)), https_(std::move(https)), current_(files_) {}

void JwtKeySource::publish(const JwtKeySet& fetched) {
  fetched_keys_ = fetched;
  auto joined = std::make_shared<JwtKeySet>(*files_);
  joined->keys.insert(joined->keys.end(), fetched.keys.begin(), fetched.keys.end());
  current_.store(std::move(joined));
  fetched_.store(true);
}

void JwtKeySource::adopt(const JwtKeySource& previous) {
  if (previous.url_ == url_ && previous.fetched_.load()) publish(previous.fetched_keys_);
}

}  // namespace wsgate::tls
