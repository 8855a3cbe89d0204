// Every TLS context one config needs: one ServerContext per TLS listener and one
// ClientContext per TLS upstream; and the key material of routes' JWT checks
// (tls/jwt_keys.h), loaded and reloaded the same way. Built from a config snapshot (at start, on
// SIGHUP to reload certificates, and by --check-config), then shared read-only by the workers; each
// connection keeps the snapshot it started with alive.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "tls/client_context.h"
#include "tls/jwt_keys.h"
#include "tls/server_context.h"

namespace wsgate::tls {

struct TlsSnapshot {
  // By listener index in Config::listeners; nullptr for plain listeners.
  std::vector<std::shared_ptr<const ServerContext>> listeners;
  // By upstream name; absent for plain upstreams.
  std::unordered_map<std::string, std::shared_ptr<const ClientContext>> upstreams;

  // By route name, for routes with [route.auth] type = "jwt". The sources are shared
  // with the main thread's JWKS fetchers (proxy/auth/jwks_fetcher.h).
  std::unordered_map<std::string, std::shared_ptr<JwtKeySource>> route_jwt_keys;

  const ClientContext* upstream(const std::string& name) const {
    auto it = upstreams.find(name);
    return it == upstreams.end() ? nullptr : it->second.get();
  }
  const JwtKeySource* jwt_keys(const std::string& route) const {
    auto it = route_jwt_keys.find(route);
    return it == route_jwt_keys.end() ? nullptr : it->second.get();
  }
};

using TlsSnapshotPtr = std::shared_ptr<const TlsSnapshot>;

// Loads every certificate and key (and JWT key file) the config names. nullptr with `error`
// ("file:line:column: ...") when any of them is unreadable, mismatched or expired.
TlsSnapshotPtr build_tls_snapshot(const conf::Config& config, std::string& error);

}  // namespace wsgate::tls
