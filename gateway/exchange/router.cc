#include "gateway/exchange/router.h"

#include "proxy/codec/ascii_case.h"

namespace wsgate::gateway {

std::string normalize_host(std::string_view host_header) {
  std::string_view name = host_header;
  if (!name.empty() && name.front() == '[') {
    const auto close = name.find(']');
    if (close != std::string_view::npos) name = name.substr(0, close + 1);
  } else if (const auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  std::string out(name);
  for (char& c : out) c = ascii::lower(c);  // not std::tolower: no locale, no call per byte
  return out;
}

std::string_view target_path(std::string_view target) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const auto after_scheme = target.find("//") + 2;
    const auto slash = target.find('/', after_scheme);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  const auto query = target.find_first_of("?#");
  return target.substr(0, query);
}

namespace {

// 0: no match; otherwise larger is more specific.
std::size_t host_score(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return 1;
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.ends_with(suffix) ? 2 + suffix.size() : 0;
  }
  return pattern == host ? 1000 + pattern.size() : 0;
}

bool path_matches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  return prefix.size() == path.size() || prefix.ends_with('/') || path[prefix.size()] == '/';
}

}  // namespace

const conf::Route* match_route(const conf::Config& config, std::string_view host,
                               std::string_view path) {
  const conf::Route* best = nullptr;
  std::size_t best_host = 0;
  std::size_t best_path = 0;
  for (const auto& route : config.routes) {
    const std::size_t hs = host_score(route.host, host);
    if (hs == 0 || !path_matches(route.path, path)) continue;
    if (hs > best_host || (hs == best_host && route.path.size() > best_path)) {
      best = &route;
      best_host = hs;
      best_path = route.path.size();
    }
  }
  return best;
}

}  // namespace wsgate::gateway
