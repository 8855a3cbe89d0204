#include "proxy/upstream/hash_key.h"

#include <optional>

namespace wsgate::proxy {
namespace {

std::optional<std::string_view> find_key(const conf::HashKey& key, const http::RequestHead& head) {
  switch (key.source) {
    case conf::HashKey::Source::ClientIp:
      return std::nullopt;
    case conf::HashKey::Source::Header:
      if (const http::Field* h = head.find(key.name)) return h->value;
      return std::nullopt;
    case conf::HashKey::Source::Cookie:
      // RFC 6265 5.4: "name=value; name2=value2"; several Cookie fields are read in order.
      return http::find_cookie(head, key.name);
    case conf::HashKey::Source::Query: {
      // RFC 3986 3.4: the query follows the first '?' (values are compared undecoded).
      std::string_view target = head.path;
      const auto q = target.find('?');
      if (q == std::string_view::npos) return std::nullopt;
      target.remove_prefix(q + 1);
      target = target.substr(0, target.find('#'));
      return http::find_pair(target, '&', key.name);
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
