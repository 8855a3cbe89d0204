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

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
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

}  // namespace wsgate::http
