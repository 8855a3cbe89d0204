#include "proxy/upstream/affinity.h"

#include <cstdio>

#include "proxy/upstream/stable_hash.h"

namespace wsgate::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string affinity_value(std::string_view upstream, const conf::UpstreamServer& server) {
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx",
                static_cast<unsigned long long>(stable_hash(server.text, stable_hash(upstream))));
  return out;
}

std::optional<std::string_view> request_cookie(const http::RequestHead& request,
                                               std::string_view name) {
  for (const http::Field& f : request.fields) {
    if (!http::iequals(f.name, "cookie")) continue;
    std::string_view list = f.value;
    while (!list.empty()) {
      const auto end = list.find(';');
      const std::string_view pair = trim(list.substr(0, end));
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
      if (end == std::string_view::npos) break;
      list.remove_prefix(end + 1);
    }
  }
  return std::nullopt;
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
