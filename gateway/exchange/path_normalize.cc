#include "gateway/exchange/path_normalize.h"

#include <vector>

namespace wsgate::gateway {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

http::Checked<std::string> refuse(std::string reason) {
  http::Checked<std::string> r;
  r.refusal = {400, std::move(reason), {}};
  return r;
}

}  // namespace

bool path_is_normal(std::string_view path) {
  if (!path.starts_with('/')) return true;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%') return false;
    if (path[i] == '/' && i + 1 < path.size() && (path[i + 1] == '/' || path[i + 1] == '.'))
      return false;
  }
  return true;
}

http::Checked<std::string> normalize_path(std::string_view path) {
  http::Checked<std::string> out;
  // Most paths are already normal: nothing encoded, no empty or dot segments.
  if (path_is_normal(path)) {
    out.value.assign(path);
    return out;
  }
  // RFC 3986 6.2.2.1 and 6.2.2.2: case and percent-encoding normalisation.
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c != '%') {
      decoded.push_back(c);
      continue;
    }
    const int hi = i + 2 < path.size() ? hex_value(path[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(path[i + 2]) : -1;
    if (lo < 0) return refuse("invalid percent-encoding in the path (RFC 3986 2.1)");
    const auto byte = static_cast<unsigned char>(hi * 16 + lo);
    // An encoded "/" is refused rather than decoded or kept: decoding it would change
    // the path's segments, and keeping it lets the gateway route "/a/..%2F..%2Fadmin"
    // as one segment under "/a" while an upstream that decodes before it resolves dot
    // segments serves "/admin" (path traversal across routes). Only a refusal makes the
    // gateway and every upstream agree. An encoded NUL ends the path early in C-string
    // upstreams (the same disagreement); neither has a use in a WebSocket URL.
    if (byte == '/') return refuse("encoded \"/\" (%2F) in the path");
    if (byte == 0) return refuse("encoded NUL (%00) in the path");
    if (is_unreserved(byte)) {
      decoded.push_back(static_cast<char>(byte));
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";
      decoded.push_back('%');
      decoded.push_back(kHex[byte >> 4]);
      decoded.push_back(kHex[byte & 0xF]);
    }
    i += 2;
  }
  // RFC 3986 6.2.2.3 and 5.2.4: remove dot segments, segment by segment (after decoding,
  // so "%2e%2e" is ".." too). Empty segments are dropped: "//x" is "/x".
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  std::string_view rest = std::string_view(decoded).substr(1);
  for (;;) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    // "/a/", "/a/." and "/a/b/.." name a directory: the slash stays.
    if (last) {
      trailing_slash = segment.empty() || segment == "." || segment == "..";
      break;
    }
    rest.remove_prefix(slash + 1);
  }
  std::string& result = out.value;
  result.reserve(decoded.size());
  for (const std::string_view s : segments) result.append("/").append(s);
  if (result.empty() || trailing_slash) result.push_back('/');
  return out;
}

http::Checked<std::string> normalize_target(std::string_view target) {
  const auto end = target.find_first_of("?#");
  http::Checked<std::string> out = normalize_path(target.substr(0, end));
  if (out.ok() && end != std::string_view::npos) out.value.append(target.substr(end));
  return out;
}

bool target_is_normal(std::string_view target) {
  return path_is_normal(target.substr(0, target.find_first_of("?#")));
}

}  // namespace wsgate::gateway
