#include "metrics/admin/admin_close.h"

#include <charconv>
#include <utility>
#include <vector>

#include "metrics/admin/connection_table.h"

namespace wsgate::metrics {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const std::size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return parts;
}

template <class Int>
bool parse_int(std::string_view text, Int& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool is_admin_close_code(std::uint32_t code) {
  return code == 1000 || code == 1001 || code == 1008 || code == 1011 ||
         (code >= 3000 && code <= 4999);
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // RFC 3629 3: no overlong forms, no surrogates, nothing above U+10FFFF.
    constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::optional<std::string> parse_close_path(std::string_view path, CloseRequest& out) {
  const std::vector<std::string_view> parts = split_path(path);
  if (parts.size() == 3 && parts[0] == "connections" && parts[2] == "close") {
    out.target = CloseRequest::Target::Connection;
    const std::string id = percent_decode(parts[1], /*plus_is_space=*/false);
    const std::size_t dash = id.find('-');
    if (dash == std::string::npos || !parse_int(std::string_view(id).substr(0, dash), out.worker) ||
        !parse_int(std::string_view(id).substr(dash + 1), out.id))
      return "connection id: expected \"<worker>-<n>\" as /connections shows it, got \"" + id +
             "\"";
    return std::string();
  }
  if (parts.size() == 5 && parts[0] == "upstreams" && parts[2] == "servers" &&
      parts[4] == "close") {
    out.target = CloseRequest::Target::Server;
    out.upstream = percent_decode(parts[1], /*plus_is_space=*/false);
    out.server = percent_decode(parts[3], /*plus_is_space=*/false);
    return std::string();
  }
  return std::nullopt;
}

std::string parse_close_query(std::string_view query, CloseRequest& out) {
  bool seen_code = false, seen_reason = false;
  return for_each_query_parameter(query, [&](std::string_view name, std::string value) {
    if (name == "code") {
      if (std::exchange(seen_code, true)) return std::string("code: given twice");
      std::uint32_t code = 0;
      if (!parse_int(std::string_view(value), code) || !is_admin_close_code(code))
        return "code: expected 1000, 1001, 1008, 1011 or 3000-4999 (RFC 6455 7.4), got \"" + value +
               "\"";
      out.code = static_cast<std::uint16_t>(code);
    } else if (name == "reason") {
      if (std::exchange(seen_reason, true)) return std::string("reason: given twice");
      if (value.size() > kMaxCloseReasonBytes)
        return "reason: at most 123 bytes (RFC 6455 5.5), got " + std::to_string(value.size());
      if (!is_valid_utf8(value)) return std::string("reason: not valid UTF-8 (RFC 6455 5.5.1)");
      out.reason = std::move(value);
    } else {
      return "unknown parameter \"" + std::string(name) + "\" (allowed: code, reason)";
    }
    return std::string();
  });
}

}  // namespace wsgate::metrics
