// Loading and checking one certificate chain and its private key (PEM files): readable,
// a key that matches the certificate, not expired, and the DNS names it serves.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace wsgate::tls {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

struct LoadedCertificate {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;  // intermediates, in file order
  PkeyPtr key;
  std::vector<std::string> names;  // lowercase DNS SANs (or the CN when there are none)
  int key_type = 0;                // EVP_PKEY_RSA, EVP_PKEY_EC, ...
  long long not_after_unix = 0;    // the leaf's notAfter, seconds since the epoch
  std::string ocsp_der;            // the stapled OCSP response, if configured
};

// Loads `cert_file` (leaf then intermediates) and `key_file`. On failure returns false
// with `error` saying which file and why: unreadable, not PEM, key does not match,
// expired (with the date), not yet valid.
bool load_certificate(const std::string& cert_file, const std::string& key_file,
                      const std::string& ocsp_file, LoadedCertificate& out, std::string& error);

// The most recent OpenSSL error as one short line ("certificate verify failed").
std::string last_openssl_error();

// RFC 6125 6.4.3: "*.example.com" matches exactly one extra leftmost label.
bool name_matches(const std::string& pattern, const std::string& host);

}  // namespace wsgate::tls
