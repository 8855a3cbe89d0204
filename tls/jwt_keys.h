// The keys a route's JWT check ([route.auth] type = "jwt") verifies tokens with, loaded
// with the config and again at every reload, like certificates (tls/tls_snapshot.h): a
// JWKS file (RFC 7517), PEM public keys, an HS256 secret file. A key knows the one "alg"
// it verifies (RFC 7518 3.1, RFC 8037 3.1), so a token can never pick how a key is used:
// an HS256 token is checked against HS256 secrets only, never against the bytes of an
// RSA public key (the "algorithm confusion" attack).
#pragma once

#include <openssl/evp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "tls/client_context.h"

namespace wsgate::tls {

struct JwtKey {
  std::string kid;                 // "" when the key has none
  std::string alg;                 // "RS256", "ES256", "EdDSA" or "HS256"
  std::shared_ptr<EVP_PKEY> pkey;  // RS256, ES256, EdDSA
  std::string secret;              // HS256
};

struct JwtKeySet {
  std::vector<JwtKey> keys;
};

// RSA keys shorter than this are refused (RFC 7518 3.3: 2048 bits or larger).
inline constexpr int kMinRsaBits = 2048;
// HS256 secrets shorter than this are refused (RFC 7518 3.2: at least the hash's size).
inline constexpr std::size_t kMinHmacSecret = 32;

// The signing keys of a JWKS document (RFC 7517 5): RSA, EC P-256, OKP Ed25519 and oct
// keys; keys for other uses ("use" other than "sig") or other algorithms are skipped.
// nullopt with `error` for malformed JSON or a key whose members are wrong.
std::optional<JwtKeySet> parse_jwks(std::string_view json, std::string& error);

// A PEM public key (RSA >= 2048 bits, EC P-256 or Ed25519) as a key without kid.
std::optional<JwtKey> parse_pem_public_key(std::string_view pem, std::string& error);

// Every key `jwt` names, from its files; nullptr with `error` ("<file>: <what>") when a
// file is unreadable or holds no usable key (without a jwks_url, at least one is needed).
std::shared_ptr<const JwtKeySet> load_jwt_keys(const conf::JwtAuth& jwt, std::string& error);

// One route's keys as the workers read them: the files' keys, and with a jwks_url those
// fetched from it too (proxy/auth/jwks_fetcher.h, on the main thread), published as one
// immutable set. Threading: publish() on the main thread, keys() from any worker (an
// atomic shared_ptr load per check).
class JwtKeySource {
 public:
  // `https`: the TLS client context of an https:// jwks_url (its CA: jwks_ca or the
  // system's), else null.
  JwtKeySource(std::shared_ptr<const JwtKeySet> files, std::string url,
               std::shared_ptr<const ClientContext> https = nullptr);

  std::shared_ptr<const JwtKeySet> keys() const { return current_.load(); }
  const std::string& url() const { return url_; }
  const ClientContext* https() const { return https_.get(); }
  // With a jwks_url whose first fetch has not succeeded yet: a token the files' keys do
  // not know is answered 503, not 401.
  bool waiting_for_url() const { return !url_.empty() && !fetched_.load(); }
  // The URL's keys (replacing the previous fetch), joined to the files' keys.
  void publish(const JwtKeySet& fetched);
  // The URL's keys of `previous` (the same URL in the config before a reload), so a
  // reload does not wait for a fetch.
  void adopt(const JwtKeySource& previous);

 private:
  const std::shared_ptr<const JwtKeySet> files_;
  const std::string url_;
  const std::shared_ptr<const ClientContext> https_;
  std::atomic<std::shared_ptr<const JwtKeySet>> current_;
  std::atomic<bool> fetched_{false};
  JwtKeySet fetched_keys_;  // main thread only
};

}  // namespace wsgate::tls
