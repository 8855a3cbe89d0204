// Fetches the JWKS of every route whose [route.auth] names a jwks_url, on the main
// thread's event loop, and publishes the keys to the workers through the route's
// tls::JwtKeySource (tls/jwt_keys.h): at start (and after each reload, for the new
// config's sources), then every jwks_refresh. A failed fetch (unreachable, a status
// other than 200, not a JWKS, over kMaxJwksBytes) is logged and retried after
// kRetrySeconds (or jwks_refresh if shorter); the last good keys stay in use.
//
// Ownership: the Server owns the fetchers of its current TLS snapshot and replaces them
// at a reload (gateway/reload.cc); destroying them cancels every fetch in flight.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "tls/tls_snapshot.h"

namespace wsgate::proxy {

inline constexpr std::size_t kMaxJwksBytes = 1024 * 1024;
inline constexpr int kRetrySeconds = 10;
inline constexpr int kFetchTimeoutSeconds = 10;

class JwksFetchers {
 public:
  JwksFetchers(event_base* base, const conf::Config& config, const tls::TlsSnapshot& tls);
  ~JwksFetchers();
  JwksFetchers(const JwksFetchers&) = delete;
  JwksFetchers& operator=(const JwksFetchers&) = delete;

  void start();

  class Fetch;  // one route's URL (jwks_fetcher.cc)

 private:
  event_base* base_;
  evdns_base* dns_ = nullptr;
  std::vector<std::unique_ptr<Fetch>> fetches_;
};

// For a reload: each source of `next` takes the keys `previous` fetched from its URL.
void adopt_fetched_keys(const tls::TlsSnapshot& next, const tls::TlsSnapshot& previous);

}  // namespace wsgate::proxy
