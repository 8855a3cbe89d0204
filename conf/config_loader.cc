// TOML -> Config. The file is parsed by toml++, then walked table by table: every key is
// checked against the keys its table allows, every value converted and range-checked, and
// the first problem is thrown as a ConfigError carrying the position of the value at fault.
#include "conf/config_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

#include <toml++/toml.h>

#include "conf/config_connect.h"
#include "conf/config_env.h"
#include "conf/config_limits.h"
#include "conf/config_upstream.h"
#include "conf/config_validate.h"
#include "conf/units.h"

namespace wsgate::conf {
namespace {

using detail::is_origin;
using detail::is_route_host;
using detail::is_route_path;
using detail::kKiB;
using detail::kMiB;
using detail::kNoLimit;
using detail::lowercase;
using detail::quoted;
using detail::TableReader;

constexpr std::string_view kTopKeys[] = {"workers",           "drain_timeout",  "access_log",
                                         "access_log_format", "nameservers",    "admin",
                                         "listener",          "upstream",       "route",
                                         "connect",           "limits",         "drain_spread",
                                         "trusted_proxies",   "drain_delay",    "log_level",
                                         "log_format",        "upgrade_socket", "upgrade_deadline"};
constexpr std::string_view kAdminKeys[] = {"address",
                                           "token",
                                           "token_file",
                                           "read_token",
                                           "read_token_file",
                                           "write_token",
                                           "write_token_file",
                                           "per_connection_metrics",
                                           "per_connection_limit"};
constexpr std::string_view kListenerKeys[] = {"address",
                                              "name",
                                              "max_header_bytes",
                                              "max_headers",
                                              "handshake_timeout",
                                              "tls",
                                              "http2",
                                              "h2c",
                                              "http2_send_timeout",
                                              "connect",
                                              "proxy_protocol",
                                              "proxy_protocol_from"};
constexpr std::string_view kRouteKeys[] = {"name",
                                           "host",
                                           "path",
                                           "upstream",
                                           "allowed_origins",
                                           "require_origin",
                                           "websocket_only",
                                           "via",
                                           "max_body_size",
                                           "max_message_size",
                                           "buffer_size",
                                           "connect_timeout",
                                           "upstream_handshake_timeout",
                                           "idle_timeout",
                                           "ping_interval",
                                           "ping_timeout",
                                           "ping_to",
                                           "max_message_rate",
                                           "max_message_burst",
                                           "auth"};

// Builds a Config from the parsed document, section by section. Names (and listener
// addresses, and route host+path pairs) are checked for uniqueness as they are read.
class ConfigBuilder {
 public:
  explicit ConfigBuilder(const std::string& file) : file_(file) { config_.source_file = file; }

  Config build(const toml::table& root) {
    const TableReader top(file_, root, "", kTopKeys);
    top.integer("workers", &config_.workers, 0, 1024);
    if (config_.workers == 0) config_.workers = std::max(1u, std::thread::hardware_concurrency());
    top.duration("drain_timeout", &config_.drain_timeout, /*must_be_positive=*/false);
    top.duration("drain_spread", &config_.drain_spread, /*must_be_positive=*/false);
    top.duration("drain_delay", &config_.drain_delay, /*must_be_positive=*/false);
    if (config_.drain_spread.count() > 0 && config_.drain_spread >= config_.drain_timeout)
      top.fail_expected("drain_spread", "a duration shorter than drain_timeout (" +
                                            std::to_string(config_.drain_timeout.count()) + "ms)");
    top.duration("upgrade_deadline", &config_.upgrade_deadline, /*must_be_positive=*/false);
    // sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
    if (top.string("upgrade_socket", &config_.upgrade_socket) &&
        (config_.upgrade_socket.empty() || config_.upgrade_socket.size() > 107))
      top.fail_expected("upgrade_socket", "a file path of 1 to 107 bytes");
    top.string("access_log", &config_.access_log);
    std::string format;
    if (top.string("access_log_format", &format)) {
      if (format == "json") {
        config_.access_log_format = AccessLogFormat::Json;
      } else if (format != "text") {
        top.fail_expected("access_log_format", R"(one of: "text", "json")");
      }
    }
    std::string level;
    if (top.string("log_level", &level)) {
      if (level == "debug") {
        config_.log_level = LogLevel::Debug;
      } else if (level == "info") {
        config_.log_level = LogLevel::Info;
      } else if (level == "warn") {
        config_.log_level = LogLevel::Warn;
      } else if (level == "error") {
        config_.log_level = LogLevel::Error;
      } else {
        top.fail_expected("log_level", R"(one of: "debug", "info", "warn", "error")");
      }
    }
    std::string log_format;
    if (top.string("log_format", &log_format)) {
      if (log_format == "json") {
        config_.log_format = LogFormat::Json;
      } else if (log_format != "text") {
        top.fail_expected("log_format", R"(one of: "text", "json")");
      }
    }
    for (const auto& ns : top.strings("nameservers", R"(an IP address and port like "10.0.0.2:53")",
                                      [](std::string_view s) {
                                        const auto hp = parse_host_port(s);
                                        return hp && is_ip_literal(hp->host);
                                      }))
      config_.nameservers.push_back(*parse_host_port(ns));
    config_.trusted_proxies = read_networks(top, "trusted_proxies");
    for (const toml::table* table : top.tables("listener")) read_listener(*table);
    // Upstreams before routes: a route must name an upstream that exists.
    for (const toml::table* table : top.tables("upstream")) read_upstream(*table);
    for (const toml::table* table : top.tables("route")) read_route(*table);
    if (const toml::node* admin = top.find("admin")) {
      if (!admin->is_table()) top.fail_expected("admin", "a table ([admin])");
      read_admin(*admin->as_table());
    }
    if (const toml::node* connect = top.find("connect")) {
      if (!connect->is_table()) top.fail_expected("connect", "a table ([connect])");
      config_.connect = detail::read_connect(file_, *connect->as_table());
    }
    if (const toml::node* limits = top.find("limits")) {
      if (!limits->is_table()) top.fail_expected("limits", "a table ([limits])");
      config_.limits = detail::read_limits(file_, *limits->as_table());
    }
    return std::move(config_);
  }

 private:
  // Records `key` in `seen`; a second use is an error at `at` saying `what`, then
  // "(first defined at line N)".
  void claim(std::map<std::string, int>* seen, const std::string& key, const SourcePosition& at,
             const std::string& what) const {
    const auto [it, inserted] = seen->emplace(key, at.line);
    if (!inserted)
      throw ConfigError{file_, at.line, at.column,
                        what + " (first defined at line " + std::to_string(it->second) + ")"};
  }

  // An array of networks ("10.0.0.0/8", "fd00::/8", "192.0.2.7"); absent: empty.
  static std::vector<IpNetwork> read_networks(const TableReader& r, std::string_view key) {
    std::vector<IpNetwork> networks;
    for (const auto& text :
         r.strings(key, R"(a network like "10.0.0.0/8", "fd00::/8" or an address)",
                   [](std::string_view v) { return detail::parse_cidr(v).has_value(); }))
      networks.push_back(*detail::parse_cidr(text));
    return networks;
  }

  // A `name` key, if present, must be non-empty: names appear in logs and metric labels.
  static void read_name(const TableReader& r, std::string* out) {
    if (r.string("name", out) && out->empty()) r.fail_expected("name", "a non-empty string");
  }

  void read_listener(const toml::table& table) {
    const TableReader r(file_, table, "listener", kListenerKeys);
    Listener listener;
    listener.where = r.position();
    std::string address;
    r.require("address");
    r.string("address", &address);
    const auto host_port = parse_host_port(address);
    constexpr auto kExpected = R"(an IP address and port like "127.0.0.1:8080" or "[::1]:8080")";
    if (!host_port) r.fail_expected("address", kExpected);
    // A listener binds before any resolver runs, and a name could map to many addresses.
    if (!is_ip_literal(host_port->host))
      r.fail_expected("address", kExpected, " (listeners take IP addresses, not host names)");
    listener.address = *host_port;
    claim(&listener_addresses_, host_port->host + " " + std::to_string(host_port->port),
          r.value_position("address"), "duplicate listener address " + quoted(address));
    listener.name = address;
    read_name(r, &listener.name);
    r.size("max_header_bytes", &listener.max_header_bytes, kKiB, kMiB);
    r.integer("max_headers", &listener.max_headers, 1, 1000);
    r.duration("handshake_timeout", &listener.handshake_timeout, /*must_be_positive=*/true);
    r.duration("http2_send_timeout", &listener.http2_send_timeout, /*must_be_positive=*/true);
    if (const toml::table* tls = r.table("tls"))
      listener.tls = detail::read_listener_tls(file_, *tls);
    // http2 is negotiated by ALPN, so it needs TLS; h2c is for plain listeners only.
    if (r.boolean("http2", &listener.http2) && !listener.tls)
      r.fail_at(r.find("http2")->source(),
                "listener.http2: only for TLS listeners (plain ones take h2c = true)");
    if (r.boolean("h2c", &listener.h2c) && listener.tls)
      r.fail_at(r.find("h2c")->source(),
                "listener.h2c: only for plain listeners (TLS ones use http2)");
    r.boolean("connect", &listener.connect);
    r.boolean("proxy_protocol", &listener.proxy_protocol);
    listener.proxy_protocol_from = read_networks(r, "proxy_protocol_from");
    if (listener.proxy_protocol && listener.proxy_protocol_from.empty()) {
      const toml::node* from = r.find("proxy_protocol_from");
      const SourcePosition at = from != nullptr ? r.value_position("proxy_protocol_from")
                                                : r.value_position("proxy_protocol");
      throw ConfigError{file_, at.line, at.column,
                        "listener.proxy_protocol_from: expected the networks PROXY headers are "
                        "accepted from (non-empty), e.g. [\"10.0.0.0/8\"]"};
    }
    if (!listener.proxy_protocol && r.find("proxy_protocol_from") != nullptr)
      r.fail_at(r.find("proxy_protocol_from")->source(),
                "listener.proxy_protocol_from: only with proxy_protocol = true");
    claim(&listener_names_, listener.name, r.value_position("name"),
          "duplicate listener name " + quoted(listener.name));
    config_.listeners.push_back(std::move(listener));
  }

  void read_upstream(const toml::table& table) {
    const TableReader r(file_, table, "upstream", detail::kUpstreamKeys);
    Upstream upstream = detail::read_upstream(file_, r);
    if (const toml::table* tls = r.table("tls"))
      upstream.tls = detail::read_upstream_tls(file_, *tls);
    claim(&upstream_names_, upstream.name, r.value_position("name"),
          "duplicate upstream name " + quoted(upstream.name));
    config_.upstreams.push_back(std::move(upstream));
  }

  void read_route(const toml::table& table) {
    const TableReader r(file_, table, "route", kRouteKeys);
    Route route;
    route.where = r.position();
    // Host names are case-insensitive (RFC 4343); store the lowercase form the router uses.
    if (r.string("host", &route.host) && !is_route_host(route.host = lowercase(route.host)))
      r.fail_expected("host", R"("*", "example.com" or "*.example.com")");
    if (r.string("path", &route.path) && !is_route_path(route.path))
      r.fail_expected("path", R"(a path starting with "/" like "/chat", without "?" or "#")");
    r.require("upstream");
    r.string("upstream", &route.upstream);
    route.allowed_origins =
        r.strings("allowed_origins",
                  R"(an origin like "https://app.example.com" (no path) or "null")", is_origin);
    // RFC 6454 6.1: browsers serialize the scheme and host in lowercase.
    for (auto& origin : route.allowed_origins) origin = lowercase(origin);
    if (r.boolean("require_origin", &route.require_origin) && route.require_origin &&
        route.allowed_origins.empty())
      r.fail_at(r.find("require_origin")->source(),
                "route.require_origin: only with a non-empty allowed_origins (without it any "
                "Origin, or none, is accepted)");
    r.boolean("websocket_only", &route.websocket_only);
    r.boolean("via", &route.via);
    r.size("max_body_size", &route.max_body_size, 0, kNoLimit);
    r.size("max_message_size", &route.max_message_size, 1, kNoLimit);
    r.size("buffer_size", &route.buffer_size, 4 * kKiB, 64 * kMiB);
    r.duration("connect_timeout", &route.connect_timeout, /*must_be_positive=*/true);
    r.duration("upstream_handshake_timeout", &route.upstream_handshake_timeout, true);
    r.duration("idle_timeout", &route.idle_timeout, /*must_be_positive=*/true);
    detail::read_route_keepalive(r, &route);
    if (const toml::table* auth = r.table("auth")) {
      route.auth = detail::read_route_auth(file_, *auth);
      const ForwardAuth& forward = route.auth.forward;
      if (route.auth.type == RouteAuth::Type::Forward && !config_.find_upstream(forward.upstream))
        r.fail_at(auth->get("upstream")->source(), "route.auth.upstream: names upstream " +
                                                       quoted(forward.upstream) +
                                                       ", which is not defined");
    }
    route.name = route.host + route.path;
    read_name(r, &route.name);

    // Two routes with the same host and path: the second could never be chosen.
    claim(&route_matches_, route.host + route.path, route.where,
          "route " + quoted(route.name) + " has the same host " + quoted(route.host) +
              " and path " + quoted(route.path) + " as an earlier route");
    claim(&route_names_, route.name, r.value_position("name"),
          "duplicate route name " + quoted(route.name));
    if (!config_.find_upstream(route.upstream)) {
      std::string defined;
      for (const auto& u : config_.upstreams) defined += (defined.empty() ? "" : ", ") + u.name;
      r.fail_at(r.find("upstream")->source(),
                "route " + quoted(route.name) + " names upstream " + quoted(route.upstream) +
                    ", which is not defined (defined: " + defined + ")");
    }
    config_.routes.push_back(std::move(route));
  }

  // `key` or `key`_file (a file holding the token on one line, relative to the config
  // file's folder); true when one was given. The token is a secret: never echoed.
  bool read_token(const TableReader& r, const std::string& key, std::string* out) const {
    const std::string file_key = key + "_file";
    const toml::node* inline_value = r.find(key);
    const toml::node* file_value = r.find(file_key);
    if (inline_value != nullptr && file_value != nullptr)
      r.fail_at(file_value->source(),
                "admin." + file_key + ": at most one of " + key + " and " + file_key);
    std::string where = "admin." + key;
    if (file_value != nullptr) {
      std::string path;
      r.string(file_key, &path);
      if (path.empty()) r.fail_expected(file_key, "a file path");
      if (path.front() != '/') {
        const auto slash = file_.rfind('/');
        if (slash != std::string::npos) path = file_.substr(0, slash + 1) + path;
      }
      std::ifstream in(path, std::ios::binary);
      std::ostringstream contents;
      contents << in.rdbuf();
      if (!in)
        r.fail_at(file_value->source(),
                  "admin." + file_key + ": cannot read " + path + ": " + std::strerror(errno));
      *out = contents.str();
      while (!out->empty() && (out->back() == '\n' || out->back() == '\r')) out->pop_back();
      where = "admin." + file_key + " (" + path + ")";
    } else if (!r.string(key, out)) {
      return false;
    }
    // RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    if (out->empty() ||
        out->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-._~+/=") != std::string::npos)
      r.fail_at((file_value != nullptr ? file_value : inline_value)->source(),
                where + ": expected a non-empty token of letters, digits and -._~+/=" +
                    (file_value != nullptr ? " on one line" : ""));
    return true;
  }

  void read_admin(const toml::table& table) {
    const TableReader r(file_, table, "admin", kAdminKeys, /*single_table=*/true);
    Admin& admin = config_.admin;
    admin.enabled = true;
    admin.where = r.position();
    std::string address;
    if (r.string("address", &address)) {
      const auto host_port = parse_host_port(address);
      constexpr auto kExpected = R"(an IP address and port like "127.0.0.1:9090" or "[::1]:9090")";
      if (!host_port || !is_ip_literal(host_port->host)) r.fail_expected("address", kExpected);
      admin.address = *host_port;
    }
    const std::string key = admin.address.host + " " + std::to_string(admin.address.port);
    if (const auto it = listener_addresses_.find(key); it != listener_addresses_.end())
      throw ConfigError{file_, r.value_position("address").line, r.value_position("address").column,
                        "admin.address is also the address of the [[listener]] at line " +
                            std::to_string(it->second)};
    std::string both;
    const bool has_both = read_token(r, "token", &both);
    const bool has_read = read_token(r, "read_token", &admin.read_token);
    const bool has_write = read_token(r, "write_token", &admin.write_token);
    if (has_both && (has_read || has_write)) {
      const std::string_view split = r.find("write_token") != nullptr        ? "write_token"
                                     : r.find("write_token_file") != nullptr ? "write_token_file"
                                     : r.find("read_token") != nullptr       ? "read_token"
                                                                             : "read_token_file";
      r.fail_at(r.find(split)->source(),
                "admin." + std::string(split) +
                    ": at most one of token (for reads and writes) and read_token/write_token");
    }
    if (has_both) admin.read_token = admin.write_token = both;
    r.boolean("per_connection_metrics", &admin.per_connection_metrics);
    r.integer("per_connection_limit", &admin.per_connection_limit, 1, 100000);
  }

  const std::string& file_;
  Config config_;
  std::map<std::string, int> listener_addresses_, listener_names_, upstream_names_, route_matches_,
      route_names_;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

std::string ConfigError::to_string() const {
  if (line == 0) return file + ": " + message;
  if (column == 0) return file + ":" + std::to_string(line) + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

LoadResult load_config_text(std::string_view text, const std::string& file_name) {
  LoadResult result;
  try {
    toml::table root = toml::parse(text, std::string_view(file_name));
    // ${NAME} in string values, from the environment (conf/config_env.h).
    detail::expand_environment(file_name, root,
                               [](const std::string& name) { return std::getenv(name.c_str()); });
    result.config = std::make_shared<const Config>(ConfigBuilder(file_name).build(root));
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    result.error =
        ConfigError{file_name, static_cast<int>(begin.line), static_cast<int>(begin.column),
                    "invalid TOML: " + std::string(e.description())};
  } catch (const ConfigError& e) {
    result.error = e;
  }
  return result;
}

LoadResult load_config(const std::string& path) {
  const auto read_error = [&path](int err) {
    return LoadResult{
        nullptr,
        ConfigError{path, 0, 0, "cannot read config file: " + std::string(std::strerror(err))}};
  };
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return read_error(errno);
  std::string text;
  char buffer[64 * 1024];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) return read_error(errno);  // e.g. EISDIR for a directory
  return load_config_text(text, path);
}

}  // namespace wsgate::conf
