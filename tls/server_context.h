// The TLS side of one listener: its certificates grouped into SSL_CTXs, chosen per
// handshake by SNI, with ALPN, session resumption and optional client certificates.
//
// Immutable once built; shared (shared_ptr) by every worker and kept alive by every
// connection that uses it, so a reload can replace it while handshakes are in flight.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "tls/certificate.h"
#include "tls/ticket_keys.h"

namespace wsgate::tls {

class ServerContext {
 public:
  // Loads every file and builds the contexts; nullptr with `error` (naming the file and
  // the config position) when anything is wrong. `offer_h2`: ALPN offers h2, then
  // http/1.1 (else http/1.1 only). `listener`: the listener's name, part of the
  // resumption scope (a session resumes only on the listener, and with the client
  // certificate settings, it was made with).
  static std::shared_ptr<const ServerContext> create(const conf::ListenerTls& config,
                                                     const std::string& config_file,
                                                     std::string& error, bool offer_h2 = false,
                                                     const std::string& listener = {});
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A new SSL for one accepted connection (the caller owns it, e.g. via a bufferevent).
  SSL* new_ssl() const;

  // The names each SSL_CTX serves, in selection order (for logs and tests).
  std::vector<std::vector<std::string>> served_names() const;
  // Each configured certificate file with its leaf's notAfter (seconds since the epoch),
  // in config order.
  const std::vector<std::pair<std::string, long long>>& expiries() const { return expiries_; }

 private:
  // Certificates with the same names share one SSL_CTX, so an RSA and an ECDSA
  // certificate for the same site sit side by side and OpenSSL picks by the client's
  // signature algorithms.
  struct Group {
    SslCtxPtr ctx;
    std::vector<std::string> names;
    std::vector<std::pair<X509*, std::string>> ocsp;  // leaf -> DER response
    std::vector<LoadedCertificate> certificates;
  };

  ServerContext() = default;
  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void* arg);
  static int on_ocsp_status(SSL* ssl, void* arg);
  const Group* select(const std::string& server_name) const;

  std::shared_ptr<TicketKeyRing> tickets_;      // outlives groups_' SSL_CTXs
  std::vector<std::unique_ptr<Group>> groups_;  // groups_[0] is the default
  std::vector<std::pair<std::string, long long>> expiries_;
};

// The resumption scope of a listener (its SSL_CTXs' session id context, and the key of
// its ticket keys): SHA-256 over the listener name, the client_auth mode and the bytes of
// the client CA file. Sessions never cross scopes: not to another listener, and not past
// a reload that changes client_auth or the CAs (RFC 8446 4.6.1, RFC 5077 3.4: a server
// must not resume a session under other verification settings). Empty `error` on success.
ResumptionScope resumption_scope(const conf::ListenerTls& config, const std::string& listener,
                                 std::string& error);

// A short description of the negotiated session for logs: "TLSv1.3".
std::string describe_session(const SSL* ssl);

}  // namespace wsgate::tls
