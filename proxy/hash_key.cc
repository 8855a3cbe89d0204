#include "proxy/hash_key.h"

#include <optional>

namespace wsgate::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Finds `name` in "a=1<sep>b=2": the value of the first pair with that exact name.
std::optional<std::string_view> find_pair(std::string_view list, char sep, std::string_view name) {
  while (!list.empty()) {
    const auto end = list.find(sep);
    const std::string_view pair = trim(list.substr(0, end));
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> find_key(const conf::HashKey& key, const http::RequestHead& head) {
  switch (key.source) {
    case conf::HashKey::Source::ClientIp:
      return std::nullopt;
    case conf::HashKey::Source::Header:
      if (const http::Field* h = head.find(key.name)) return h->value;
      return std::nullopt;
    case conf::HashKey::Source::Cookie:
      // RFC 6265 5.4: "name=value; name2=value2"; several Cookie fields are read in order.
      for (const http::Field& h : head.fields) {
        if (!http::iequals(h.name, "cookie")) continue;
        if (auto v = find_pair(h.value, ';', key.name)) return v;
      }
      return std::nullopt;
    case conf::HashKey::Source::Query: {
      // RFC 3986 3.4: the query follows the first '?' (values are compared undecoded).
      std::string_view target = head.path;
      const auto q = target.find('?');
      if (q == std::string_view::npos) return std::nullopt;
      target.remove_prefix(q + 1);
      target = target.substr(0, target.find('#'));
      return find_pair(target, '&', key.name);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string hash_key_text(const conf::HashKey& key, std::string_view client_ip,
                          const http::RequestHead& request) {
  if (auto found = find_key(key, request); found && !found->empty()) return std::string(*found);
  return std::string(client_ip);
}

}  // namespace wsgate::proxy
