#include "proxy/codec/request_head.h"

#include <algorithm>

namespace wsgate::http {

const char* to_string(Version v) {
  switch (v) {
    case Version::Http10:
      return "http/1.0";
    case Version::Http11:
      return "http/1.1";
    case Version::Http2:
      return "h2";
  }
  return "?";
}

const Field* RequestHead::find(std::string_view name) const {
  for (const Field& f : fields)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

std::size_t RequestHead::count(std::string_view name) const {
  return static_cast<std::size_t>(std::count_if(
      fields.begin(), fields.end(), [&](const Field& f) { return iequals(f.name, name); }));
}

std::optional<std::string_view> find_pair(std::string_view list, char sep, std::string_view name) {
  while (!list.empty()) {
    const auto end = list.find(sep);
    const std::string_view pair = ascii::trim_ows(list.substr(0, end));
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> find_cookie(const RequestHead& request, std::string_view name) {
  for (const Field& f : request.fields) {
    if (!iequals(f.name, "cookie")) continue;
    if (auto v = find_pair(f.value, ';', name)) return v;
  }
  return std::nullopt;
}

}  // namespace wsgate::http
