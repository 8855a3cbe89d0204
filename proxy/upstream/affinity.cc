#include "proxy/upstream/affinity.h"

#include <cstdio>

#include "proxy/upstream/stable_hash.h"

namespace wsgate::proxy {
std::string affinity_value(std::string_view upstream, const conf::UpstreamServer& server) {
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx",
                static_cast<unsigned long long>(stable_hash(server.text, stable_hash(upstream))));
  return out;
}

std::optional<std::string_view> request_cookie(const http::RequestHead& request,
                                               std::string_view name) {
  return http::find_cookie(request, name);
}

std::optional<std::string> affinity_cookie_for(const conf::Upstream& upstream,
                                               const conf::UpstreamServer& server,
                                               const http::RequestHead& request) {
  if (upstream.affinity_cookie.empty()) return std::nullopt;
  const std::string value = affinity_value(upstream.name, server);
  if (request_cookie(request, upstream.affinity_cookie) == std::string_view(value))
    return std::nullopt;
  return affinity_set_cookie(upstream.affinity_cookie, value);
}

std::string affinity_set_cookie(std::string_view name, std::string_view value) {
  // RFC 6265 4.1: Path=/ so every route of the site sends it back; no Expires: a
  // session cookie; HttpOnly: page scripts have no use for it; SameSite=Lax: sent on
  // top-level navigations from other sites, not on their subrequests.
  std::string out(name);
  out.append("=").append(value).append("; Path=/; HttpOnly; SameSite=Lax");
  return out;
}

}  // namespace wsgate::proxy
