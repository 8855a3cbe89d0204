// [route.auth]: a route's JWT or forward-auth check (conf::RouteAuth). Every problem is
// reported at the value at fault; key files are only named here (tls/jwt_keys.h loads
// them, so a reload with a broken key file is refused like one with a broken cert).
#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "conf/config_validate.h"

namespace wsgate::conf::detail {
namespace {

constexpr std::string_view kJwtKeys[] = {
    "type",          "token_from",  "jwks_file",       "public_key_files", "hmac_secret_file",
    "algorithms",    "issuer",      "audiences",       "clock_skew",       "required_claims",
    "claim_headers", "strip_token", "close_on_expiry", "jwks_url",         "jwks_refresh",
    "jwks_ca"};
constexpr std::string_view kForwardKeys[] = {
    "type",    "upstream",           "path",      "request_headers", "response_headers",
    "timeout", "failure_mode_allow", "cache_ttl", "cache_key",       "cache_entries"};

bool any_text(std::string_view s) {
  return !s.empty();
}

// RFC 9110 5.6.2: a field name is a token.
bool is_field_name(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  }
  return true;
}

// The framing and hop-by-hop fields (RFC 9110 7.6.1) of the auth service's answer never go
// to the upstream request.
constexpr std::string_view kNotCopiedToUpstream[] = {
    "host", "content-length", "transfer-encoding", "connection",      "keep-alive",
    "te",   "trailer",        "upgrade",           "proxy-connection"};

template <std::size_t N>
bool names_one_of(std::string_view s, const std::string_view (&names)[N]) {
  for (std::string_view n : names)
    if (n.size() == s.size() && std::equal(n.begin(), n.end(), s.begin(), [](char a, char b) {
          return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
        }))
      return true;
  return false;
}

bool is_request_field(std::string_view s) {
  return is_field_name(s) && !forward_auth_never_copied(s);
}

bool is_answer_field(std::string_view s) {
  return is_field_name(s) && !names_one_of(s, kNotCopiedToUpstream);
}

bool is_algorithm(std::string_view s) {
  return s == "RS256" || s == "ES256" || s == "EdDSA" || s == "HS256";
}

// "bearer", "cookie:NAME", "query:NAME", "subprotocol:PREFIX".
bool is_token_source(std::string_view s) {
  if (s == "bearer") return true;
  for (std::string_view kind : {"cookie:", "query:", "subprotocol:"})
    if (s.size() > kind.size() && s.substr(0, kind.size()) == kind) return true;
  return false;
}

JwtAuth::TokenSource token_source(std::string_view s) {
  using Kind = JwtAuth::TokenSource::Kind;
  if (s == "bearer") return {Kind::Bearer, {}};
  const auto colon = s.find(':');
  const std::string_view kind = s.substr(0, colon);
  const std::string name(s.substr(colon + 1));
  if (kind == "cookie") return {Kind::Cookie, name};
  if (kind == "query") return {Kind::Query, name};
  return {Kind::Subprotocol, name};
}

std::vector<std::string> field_names(
    const TableReader& r, std::string_view key, bool (*check)(std::string_view) = is_field_name,
    std::string_view expected = "a header field name like \"authorization\"") {
  std::vector<std::string> names = r.strings(key, expected, check);
  for (std::string& n : names) n = lowercase(std::move(n));
  return names;
}

// "http://" or "https://", a host (a name, an IPv4 address or a bracketed IPv6 one), an
// optional port, and a path (RFC 3986 3); no user info, no fragment.
bool parse_jwks_url(JwtAuth* jwt) {
  std::string_view rest = jwt->jwks_url;
  if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    jwt->jwks_https = true;
    rest.remove_prefix(8);
  } else {
    return false;
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  jwt->jwks_path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (jwt->jwks_path.find_first_of(" #\t\r\n") != std::string::npos ||
      authority.find('@') != std::string_view::npos || authority.empty())
    return false;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    jwt->jwks_host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return false;
      port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    jwt->jwks_host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (jwt->jwks_host.empty()) return false;
  jwt->jwks_port = jwt->jwks_https ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || value > 65535) return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return false;
    jwt->jwks_port = static_cast<std::uint16_t>(value);
  }
  return true;
}

JwtAuth read_jwt(const std::string& file, const TableReader& r) {
  JwtAuth jwt;
  if (r.find("token_from") != nullptr) {
    jwt.token_from.clear();
    for (const std::string& s :
         r.strings("token_from", R"("bearer", "cookie:NAME", "query:NAME" or "subprotocol:PREFIX")",
                   is_token_source))
      jwt.token_from.push_back(token_source(s));
    if (jwt.token_from.empty()) r.fail_expected("token_from", "at least one place");
  }
  if (r.string("jwks_file", &jwt.jwks_file)) jwt.jwks_file = resolve_path(file, jwt.jwks_file);
  jwt.public_key_files = r.strings("public_key_files", "a file path", any_text);
  for (std::string& p : jwt.public_key_files) p = resolve_path(file, p);
  if (r.string("hmac_secret_file", &jwt.hmac_secret_file))
    jwt.hmac_secret_file = resolve_path(file, jwt.hmac_secret_file);
  if (r.string("jwks_url", &jwt.jwks_url) && !parse_jwks_url(&jwt))
    r.fail_expected("jwks_url", R"(a URL like "https://idp.example.com/.well-known/jwks.json")");
  r.duration("jwks_refresh", &jwt.jwks_refresh, /*must_be_positive=*/true);
  if (r.string("jwks_ca", &jwt.jwks_ca)) jwt.jwks_ca = resolve_path(file, jwt.jwks_ca);
  if (jwt.jwks_url.empty())
    for (const char* key : {"jwks_refresh", "jwks_ca"})
      if (const toml::node* node = r.find(key))
        r.fail_at(node->source(),
                  std::string("route.auth.") + key + ": has no effect without route.auth.jwks_url");
  if (jwt.jwks_file.empty() && jwt.public_key_files.empty() && jwt.hmac_secret_file.empty() &&
      jwt.jwks_url.empty())
    r.fail_at(r.table_source(),
              "route.auth: a jwt check needs keys: jwks_file, jwks_url, public_key_files or "
              "hmac_secret_file");
  jwt.algorithms = r.strings("algorithms", R"("RS256", "ES256", "EdDSA" or "HS256")", is_algorithm);
  r.string("issuer", &jwt.issuer);
  jwt.audiences = r.strings("audiences", "a non-empty string", any_text);
  r.duration("clock_skew", &jwt.clock_skew, /*must_be_positive=*/false);
  jwt.required_claims = r.strings("required_claims", "a claim name", any_text);
  if (const toml::node* node = r.find("claim_headers")) {
    const toml::table* table = node->as_table();
    if (table == nullptr) r.fail_expected("claim_headers", R"(a table of claim = "Header-Name")");
    for (const auto& [claim, header] : *table) {
      const std::string* name = header.is_string() ? &header.as_string()->get() : nullptr;
      if (name == nullptr || !is_field_name(*name))
        r.fail_at(header.source(), "route.auth.claim_headers." + std::string(claim.str()) +
                                       ": expected a header field name, got " + describe(header));
      jwt.claim_headers.emplace_back(std::string(claim.str()), *name);
    }
  }
  r.boolean("strip_token", &jwt.strip_token);
  r.boolean("close_on_expiry", &jwt.close_on_expiry);
  return jwt;
}

ForwardAuth read_forward(const TableReader& r) {
  ForwardAuth forward;
  r.require("upstream");
  r.string("upstream", &forward.upstream);
  // RFC 9112 3.2.1: origin-form, a query allowed.
  if (r.string("path", &forward.path) &&
      (forward.path.empty() || forward.path.front() != '/' ||
       forward.path.find_first_of(" #\r\n\t") != std::string::npos))
    r.fail_expected("path", R"(an origin-form path like "/auth")");
  if (r.find("request_headers") != nullptr)
    forward.request_headers = field_names(
        r, "request_headers", is_request_field,
        "a header field name the gateway does not set itself (not Host, Content-Length, "
        "a hop-by-hop field or X-Forwarded-*)");
  forward.response_headers =
      field_names(r, "response_headers", is_answer_field,
                  "a header field name other than Host, Content-Length and the hop-by-hop fields");
  r.duration("timeout", &forward.timeout, /*must_be_positive=*/true);
  r.boolean("failure_mode_allow", &forward.failure_mode_allow);
  r.duration("cache_ttl", &forward.cache_ttl, /*must_be_positive=*/false);
  forward.cache_key =
      r.find("cache_key") != nullptr ? field_names(r, "cache_key") : forward.request_headers;
  r.integer("cache_entries", &forward.cache_entries, 1, 10'000'000);
  // Without a key every request would share the first decision for cache_ttl.
  if (forward.cache_ttl.count() > 0 && forward.cache_key.empty()) {
    const toml::node* at = r.find("cache_key");
    r.fail_at(at != nullptr ? at->source() : r.find("cache_ttl")->source(),
              "route.auth.cache_key: empty, so every request would share one cached decision; "
              "name the header fields that say who the client is (default: request_headers)");
  }
  if (forward.cache_ttl.count() == 0)
    for (const char* key : {"cache_key", "cache_entries"})
      if (const toml::node* node = r.find(key))
        r.fail_at(node->source(), std::string("route.auth.") + key +
                                      ": has no effect without route.auth.cache_ttl (no cache)");
  return forward;
}

}  // namespace

RouteAuth read_route_auth(const std::string& file, const toml::table& table) {
  RouteAuth auth;
  std::string type;
  if (const toml::node* t = table.get("type"); t != nullptr && t->is_string())
    type = t->as_string()->get();
  if (type == "jwt") {
    const TableReader r(file, table, "route.auth", kJwtKeys, /*single_table=*/true);
    auth.where = r.position();
    auth.type = RouteAuth::Type::Jwt;
    auth.jwt = read_jwt(file, r);
  } else if (type == "forward") {
    const TableReader r(file, table, "route.auth", kForwardKeys, /*single_table=*/true);
    auth.where = r.position();
    auth.type = RouteAuth::Type::Forward;
    auth.forward = read_forward(r);
  } else {
    // Unknown keys are reported once the type says which keys belong.
    std::vector<std::string_view> keys(std::begin(kJwtKeys), std::end(kJwtKeys));
    keys.insert(keys.end(), std::begin(kForwardKeys), std::end(kForwardKeys));
    const TableReader r(file, table, "route.auth", keys, /*single_table=*/true);
    r.require("type");
    r.fail_expected("type", R"("jwt" or "forward")");
  }
  return auth;
}

}  // namespace wsgate::conf::detail

namespace wsgate::conf {
namespace {

// forward_auth_never_copied (conf/config.h): one list for the loader and the subrequest.
constexpr std::string_view kNeverCopied[] = {"host",
                                             "content-length",
                                             "transfer-encoding",
                                             "connection",
                                             "keep-alive",
                                             "te",
                                             "trailer",
                                             "upgrade",
                                             "proxy-connection",
                                             "expect",
                                             "forwarded",
                                             "proxy-authorization",
                                             "proxy-authenticate",
                                             "x-forwarded-method",
                                             "x-forwarded-uri",
                                             "x-forwarded-host",
                                             "x-forwarded-proto",
                                             "x-forwarded-for"};
}  // namespace

bool forward_auth_never_copied(std::string_view name) {
  for (std::string_view n : kNeverCopied)
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
        }))
      return true;
  return false;
}

}  // namespace wsgate::conf
