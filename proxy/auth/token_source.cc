#include "proxy/auth/token_source.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace wsgate::proxy {
namespace {

using Kind = conf::JwtAuth::TokenSource::Kind;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(item) for each `sep`-separated item of `list`, trimmed; stops when fn says so.
template <class Fn>
void each_item(std::string_view list, char sep, Fn&& fn) {
  while (true) {
    const auto end = list.find(sep);
    if (!fn(trim(list.substr(0, end))) || end == std::string_view::npos) return;
    list.remove_prefix(end + 1);
  }
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
      continue;
    }
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return std::nullopt;
    out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
    i += 2;
  }
  return out;
}

std::optional<std::string> bearer(const http::RequestHead& request) {
  const http::Field* f = request.find("authorization");
  if (f == nullptr) return std::nullopt;
  std::string_view v = trim(f->value);
  const auto space = v.find(' ');
  if (space == std::string_view::npos || !http::iequals(v.substr(0, space), "bearer"))
    return std::nullopt;
  std::string_view token = trim(v.substr(space + 1));
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

std::optional<std::string> cookie(const http::RequestHead& request, std::string_view name) {
  std::optional<std::string> found;
  for (const http::Field& f : request.fields) {
    if (found || !http::iequals(f.name, "cookie")) continue;
    each_item(f.value, ';', [&](std::string_view pair) {
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
        std::string_view value = trim(pair.substr(eq + 1));
        // RFC 6265 4.1.1: a cookie value may be quoted.
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
          value = value.substr(1, value.size() - 2);
        if (!value.empty()) found = std::string(value);
        return false;
      }
      return true;
    });
  }
  return found;
}

std::string_view query_of(std::string_view path) {
  const auto q = path.find('?');
  return q == std::string_view::npos ? std::string_view{} : path.substr(q + 1);
}

std::optional<std::string> query(const http::RequestHead& request, std::string_view name) {
  std::optional<std::string> found;
  each_item(query_of(request.path), '&', [&](std::string_view pair) {
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) return true;
    std::optional<std::string> value = percent_decode(pair.substr(eq + 1));
    if (value && !value->empty()) found = std::move(value);
    return false;
  });
  return found;
}

std::optional<std::string> subprotocol(const http::RequestHead& request, std::string_view prefix) {
  std::optional<std::string> found;
  for (const http::Field& f : request.fields) {
    if (found || !http::iequals(f.name, "sec-websocket-protocol")) continue;
    each_item(f.value, ',', [&](std::string_view entry) {
      if (entry.size() <= prefix.size() || entry.substr(0, prefix.size()) != prefix) return true;
      found = std::string(entry.substr(prefix.size()));
      return false;
    });
  }
  return found;
}

// `list` without the items `drop` says to drop, joined with `sep` + " ".
template <class Drop>
std::string without(std::string_view list, char sep, Drop&& drop) {
  std::string out;
  each_item(list, sep, [&](std::string_view item) {
    if (!item.empty() && !drop(item)) {
      if (!out.empty()) {
        out.push_back(sep);
        if (sep != '&') out.push_back(' ');
      }
      out.append(item);
    }
    return true;
  });
  return out;
}

void rewrite_fields(http::RequestHead& request, std::string_view name, char sep,
                    const std::function<bool(std::string_view)>& drop) {
  for (http::Field& f : request.fields)
    if (http::iequals(f.name, name)) f.value = without(f.value, sep, drop);
  std::erase_if(request.fields, [&](const http::Field& f) {
    return http::iequals(f.name, name) && f.value.empty();
  });
}

bool is_query_param(std::string_view pair, std::string_view name) {
  const auto eq = pair.find('=');
  return pair.substr(0, eq) == name;
}

}  // namespace

std::optional<FoundToken> find_token(const http::RequestHead& request,
                                     const std::vector<conf::JwtAuth::TokenSource>& sources) {
  for (const conf::JwtAuth::TokenSource& source : sources) {
    std::optional<std::string> token;
    switch (source.kind) {
      case Kind::Bearer:
        token = bearer(request);
        break;
      case Kind::Cookie:
        token = cookie(request, source.name);
        break;
      case Kind::Query:
        token = query(request, source.name);
        break;
      case Kind::Subprotocol:
        token = subprotocol(request, source.name);
        break;
    }
    if (token) return FoundToken{std::move(*token), source};
  }
  return std::nullopt;
}

void strip_token(http::RequestHead& request, const FoundToken& found) {
  const std::string& name = found.source.name;
  switch (found.source.kind) {
    case Kind::Bearer:
      std::erase_if(request.fields,
                    [](const http::Field& f) { return http::iequals(f.name, "authorization"); });
      return;
    case Kind::Cookie:
      rewrite_fields(request, "cookie", ';', [&](std::string_view pair) {
        return trim(pair.substr(0, pair.find('='))) == name;
      });
      return;
    case Kind::Subprotocol:
      rewrite_fields(request, "sec-websocket-protocol", ',', [&](std::string_view entry) {
        return entry.size() > name.size() && entry.substr(0, name.size()) == name;
      });
      return;
    case Kind::Query: {
      const auto q = request.path.find('?');
      if (q == std::string::npos) return;
      std::string rest = without(std::string_view(request.path).substr(q + 1), '&',
                                 [&](std::string_view pair) { return is_query_param(pair, name); });
      request.path.resize(rest.empty() ? q : q + 1);
      request.path += rest;
      return;
    }
  }
}

std::string redact_token_query(std::string_view path,
                               const std::vector<conf::JwtAuth::TokenSource>& sources) {
  const auto q = path.find('?');
  if (q == std::string_view::npos) return std::string(path);
  std::string out(path.substr(0, q + 1));
  bool first = true;
  each_item(path.substr(q + 1), '&', [&](std::string_view pair) {
    if (!first) out.push_back('&');
    first = false;
    const bool secret = std::any_of(sources.begin(), sources.end(), [&](const auto& s) {
      return s.kind == Kind::Query && is_query_param(pair, s.name);
    });
    out += secret ? std::string(pair.substr(0, pair.find('='))) + "=redacted" : std::string(pair);
    return true;
  });
  return out;
}

}  // namespace wsgate::proxy
