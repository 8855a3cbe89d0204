#include "tls/tls_snapshot.h"

#include <string>

namespace wsgate::tls {

TlsSnapshotPtr build_tls_snapshot(const conf::Config& config, std::string& error) {
  auto snapshot = std::make_shared<TlsSnapshot>();
  for (const auto& listener : config.listeners) {
    std::shared_ptr<const ServerContext> ctx;
    if (listener.tls) {
      ctx = ServerContext::create(*listener.tls, config.source_file, error, listener.http2,
                                  listener.name);
      if (!ctx) return nullptr;
    }
    snapshot->listeners.push_back(std::move(ctx));
  }
  for (const auto& upstream : config.upstreams) {
    if (!upstream.tls) continue;
    auto ctx = ClientContext::create(*upstream.tls, config.source_file, error);
    if (!ctx) return nullptr;
    snapshot->upstreams.emplace(upstream.name, std::move(ctx));
  }
  for (const auto& route : config.routes) {
    if (route.auth.type != conf::RouteAuth::Type::Jwt) continue;
    std::string why;
    auto keys = load_jwt_keys(route.auth.jwt, why);
    if (!keys) {
      const conf::SourcePosition& at = route.auth.where;
      error = at.file + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
              ": route " + route.name + ": [route.auth] keys: " + why;
      return nullptr;
    }
    std::shared_ptr<const ClientContext> https;
    if (route.auth.jwt.jwks_https) {
      conf::UpstreamTls client;
      client.ca = route.auth.jwt.jwks_ca;
      client.where = route.auth.where;
      https = ClientContext::create(client, config.source_file, error);
      if (!https) return nullptr;
    }
    snapshot->route_jwt_keys.emplace(
        route.name,
        std::make_shared<JwtKeySource>(std::move(keys), route.auth.jwt.jwks_url, std::move(https)));
  }
  return snapshot;
}

}  // namespace wsgate::tls
