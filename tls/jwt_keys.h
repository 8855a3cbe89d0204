// The keys a route's JWT check ([route.auth] type = "jwt") verifies tokens with, loaded
// with the config and again at every reload, like certificates (tls/tls_snapshot.h): a
// JWKS file (RFC 7517), PEM public keys, an HS256 secret file. A key knows the one "alg"
// it verifies (RFC 7518 3.1, RFC 8037 3.1), so a token can never pick how a key is used:
// an HS256 token is checked against HS256 secrets only, never against the bytes of an
// RSA public key (the "algorithm confusion" attack).
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

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
// file is unreadable or holds no usable key.
std::shared_ptr<const JwtKeySet> load_jwt_keys(const conf::JwtAuth& jwt, std::string& error);

}  // namespace wsgate::tls
