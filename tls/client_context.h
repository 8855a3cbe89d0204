// The TLS side of connections to one upstream's servers (wss:// upstreams): trust store,
// verification of the server's name, SNI, optional client certificate.
// Immutable once built; shared by all workers.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "conf/config.h"
#include "tls/certificate.h"

namespace wsgate::tls {

class ClientContext {
 public:
  static std::shared_ptr<const ClientContext> create(const conf::UpstreamTls& config,
                                                     const std::string& config_file,
                                                     std::string& error);

  // A new SSL for a connection to `host` (a name or an IP literal): SNI and the name
  // verified are the configured server_name, else `host` (RFC 6125; IP literals get no
  // SNI, RFC 6066 3, and are verified against IP SANs).
  SSL* new_ssl(const std::string& host) const;

 private:
  SslCtxPtr ctx_;
  std::string server_name_;
  bool verify_ = true;
};

}  // namespace wsgate::tls
