#include "conf/config_upstream.h"

#include <set>
#include <utility>

#include "conf/address.h"
#include "conf/units.h"

namespace wsgate::conf {

const char* to_string(Balancer b) {
  switch (b) {
    case Balancer::RoundRobin:
      return "round_robin";
    case Balancer::LeastConn:
      return "least_conn";
    case Balancer::RandomTwo:
      return "random_two";
    case Balancer::Hash:
      return "hash";
  }
  return "?";
}

namespace detail {
namespace {

constexpr std::string_view kKeys[] = {"name",
                                      "servers",
                                      "balancer",
                                      "hash_key",
                                      "affinity_cookie",
                                      "keepalive",
                                      "keepalive_timeout",
                                      "retries",
                                      "eject_after_failures",
                                      "eject_duration",
                                      "slow_start",
                                      "resolve_interval",
                                      "health_check",
                                      "tls",
                                      "rebalance",
                                      "send_proxy_protocol"};

// RFC 6265 4.1.1: cookie-name = token (RFC 9110 5.6.2 tchar).
bool is_cookie_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  }
  return true;
}
constexpr std::string_view kServerKeys[] = {"address", "weight", "max_connections", "backup"};
constexpr std::string_view kHealthKeys[] = {"type",    "path", "expect_status", "interval",
                                            "timeout", "rise", "fall"};
constexpr auto kServerForm =
    R"("host:port" like "10.0.0.1:9001", "[::1]:9001" or "backend:80", or a table like {address = "10.0.0.1:9001", weight = 2})";

std::string server_text(const HostPort& hp) {
  return to_string(hp);
}

UpstreamServer read_server(const std::string& file, const TableReader& r, const toml::node& node,
                           std::size_t index) {
  const std::string name = "upstream.servers[" + std::to_string(index) + "]";
  UpstreamServer server;
  if (const auto* text = node.as_string()) {
    const auto hp = parse_host_port(text->get());
    if (!hp)
      r.fail_at(node.source(), name + ": expected " + kServerForm + ", got " + quoted(text->get()));
    static_cast<HostPort&>(server) = *hp;
  } else if (const auto* table = node.as_table()) {
    const TableReader s(file, *table, name, kServerKeys, /*single_table=*/true);
    s.require("address");
    std::string address;
    s.string("address", &address);
    const auto hp = parse_host_port(address);
    if (!hp) s.fail_expected("address", R"("host:port" like "10.0.0.1:9001" or "backend:80")");
    static_cast<HostPort&>(server) = *hp;
    s.integer("weight", &server.weight, 1, 1000);
    s.integer("max_connections", &server.max_connections, 0, 10'000'000);
    s.boolean("backup", &server.backup);
  } else {
    r.fail_at(node.source(), name + ": expected " + kServerForm + ", got " + describe(node));
  }
  server.text = server_text(server);
  return server;
}

void read_servers(const std::string& file, const TableReader& r, Upstream* upstream) {
  r.require("servers");
  const toml::node& node = *r.find("servers");
  const toml::array* array = node.as_array();
  if (!array) r.fail_expected("servers", R"(an array of "host:port" strings or server tables)");
  if (array->empty()) r.fail_expected("servers", R"(at least one "host:port")");
  std::set<std::string> seen;
  bool any_primary = false;
  for (std::size_t i = 0; i < array->size(); ++i) {
    UpstreamServer server = read_server(file, r, (*array)[i], i);
    // The address is the server's identity for hashing and health: two entries for
    // one address would be one server counted twice.
    if (!seen.insert(server.text).second)
      r.fail_at((*array)[i].source(), "upstream.servers[" + std::to_string(i) +
                                          "]: duplicate server " + quoted(server.text));
    any_primary = any_primary || !server.backup;
    upstream->servers.push_back(std::move(server));
  }
  if (!any_primary)
    r.fail_at(node.source(),
              "upstream.servers: every server is a backup; at least one must not be");
}

void read_balancer(const TableReader& r, Upstream* upstream) {
  std::string balancer;
  if (r.string("balancer", &balancer)) {
    if (balancer == "round_robin") {
      upstream->balancer = Balancer::RoundRobin;
    } else if (balancer == "least_conn") {
      upstream->balancer = Balancer::LeastConn;
    } else if (balancer == "random_two") {
      upstream->balancer = Balancer::RandomTwo;
    } else if (balancer == "hash") {
      upstream->balancer = Balancer::Hash;
    } else {
      r.fail_expected("balancer", R"(one of "least_conn", "round_robin", "random_two", "hash")");
    }
  }
  std::string key;
  if (!r.string("hash_key", &key)) return;
  if (upstream->balancer != Balancer::Hash)
    r.fail_at(r.find("hash_key")->source(),
              R"(upstream.hash_key: only used with balancer = "hash")");
  constexpr auto kKeyForm = R"("client_ip", "header:NAME", "cookie:NAME" or "query:NAME")";
  const auto colon = key.find(':');
  const std::string kind = key.substr(0, colon);
  const std::string name = colon == std::string::npos ? "" : key.substr(colon + 1);
  HashKey& out = upstream->hash_key;
  out.name = name;
  if (key == "client_ip") {
    out.source = HashKey::Source::ClientIp;
  } else if (kind == "header" && !name.empty()) {
    out.source = HashKey::Source::Header;
  } else if (kind == "cookie" && !name.empty()) {
    out.source = HashKey::Source::Cookie;
  } else if (kind == "query" && !name.empty()) {
    out.source = HashKey::Source::Query;
  } else {
    r.fail_expected("hash_key", kKeyForm);
  }
}

// expect_status = [200, 204]: final statuses (200..599) an "http" check takes as healthy.
void read_expect_status(const TableReader& h, HealthCheck* hc) {
  const toml::node* node = h.find("expect_status");
  if (node == nullptr) return;
  if (hc->type != HealthCheck::Type::Http)
    h.fail_at(node->source(),
              R"(upstream.health_check.expect_status: only used with type = "http")");
  constexpr std::string_view kExpected = "a non-empty array of HTTP statuses 200..599";
  const toml::array* statuses = node->as_array();
  if (statuses == nullptr || statuses->empty()) h.fail_expected("expect_status", kExpected);
  for (const toml::node& element : *statuses) {
    const std::optional<std::int64_t> status = element.value_exact<std::int64_t>();
    if (!status || *status < 200 || *status > 599)
      h.fail_at(element.source(), "upstream.health_check.expect_status: expected " +
                                      std::string(kExpected) + ", got " + describe(element));
    hc->expect_status.push_back(static_cast<int>(*status));
  }
}

void read_health_check(const std::string& file, const TableReader& r, Upstream* upstream) {
  const toml::node* node = r.find("health_check");
  if (!node) return;
  if (!node->is_table()) r.fail_expected("health_check", "a table ([upstream.health_check])");
  const TableReader h(file, *node->as_table(), "upstream.health_check", kHealthKeys,
                      /*single_table=*/true);
  HealthCheck& hc = upstream->health_check;
  hc.enabled = true;
  std::string type;
  if (h.string("type", &type)) {
    if (type == "tcp") {
      hc.type = HealthCheck::Type::Tcp;
    } else if (type == "websocket") {
      hc.type = HealthCheck::Type::WebSocket;
    } else if (type == "http") {
      hc.type = HealthCheck::Type::Http;
    } else {
      h.fail_expected("type", R"("tcp", "websocket" or "http")");
    }
  }
  if (h.string("path", &hc.path)) {
    if (hc.type == HealthCheck::Type::Tcp)
      h.fail_at(h.find("path")->source(),
                R"(upstream.health_check.path: only used with type = "websocket" or "http")");
    if (!hc.path.starts_with('/') || hc.path.find_first_of(" \t\r\n#") != std::string::npos)
      h.fail_expected("path", R"(a path starting with "/" like "/health")");
  }
  read_expect_status(h, &hc);
  h.duration("interval", &hc.interval, /*must_be_positive=*/true);
  h.duration("timeout", &hc.timeout, /*must_be_positive=*/true);
  if (hc.timeout > hc.interval)
    h.fail_expected("timeout", "a duration no longer than interval (" +
                                   std::to_string(hc.interval.count()) + "ms)");
  h.integer("rise", &hc.rise, 1, 100);
  h.integer("fall", &hc.fall, 1, 100);
}

void read_send_proxy_protocol(const TableReader& r, Upstream* upstream) {
  std::string version;
  if (!r.string("send_proxy_protocol", &version)) return;
  if (version == "v1") {
    upstream->send_proxy_protocol = Upstream::ProxyProtocol::V1;
  } else if (version == "v2") {
    upstream->send_proxy_protocol = Upstream::ProxyProtocol::V2;
  } else {
    r.fail_expected("send_proxy_protocol", R"("v1" or "v2")");
  }
  // The header names one client: a connection that carried it cannot be pooled for the
  // next client's request.
  if (const toml::node* keepalive = r.find("keepalive"); keepalive && upstream->keepalive > 0)
    r.fail_at(keepalive->source(),
              "upstream.keepalive: must be 0 with send_proxy_protocol (a connection carries "
              "one client's PROXY header, so it is not reused for another)");
  upstream->keepalive = 0;
}

}  // namespace

const std::span<const std::string_view> kUpstreamKeys{kKeys};

Upstream read_upstream(const std::string& file, const TableReader& r) {
  Upstream upstream;
  upstream.where = r.position();
  r.require("name");
  if (r.string("name", &upstream.name) && upstream.name.empty())
    r.fail_expected("name", "a non-empty string");
  read_servers(file, r, &upstream);
  read_balancer(r, &upstream);
  if (r.string("affinity_cookie", &upstream.affinity_cookie) &&
      !is_cookie_name(upstream.affinity_cookie))
    r.fail_expected("affinity_cookie", R"(a cookie name (a token, like "wsgate_srv"))");
  r.integer("keepalive", &upstream.keepalive, 0, 10000);
  read_send_proxy_protocol(r, &upstream);
  r.duration("keepalive_timeout", &upstream.keepalive_timeout, /*must_be_positive=*/true);
  r.integer("retries", &upstream.retries, 0, 100);
  r.integer("eject_after_failures", &upstream.eject_after_failures, 0, 1000);
  r.duration("eject_duration", &upstream.eject_duration, /*must_be_positive=*/true);
  r.duration("slow_start", &upstream.slow_start, /*must_be_positive=*/false);
  r.duration("resolve_interval", &upstream.resolve_interval, /*must_be_positive=*/false);
  read_health_check(file, r, &upstream);
  read_rebalance(file, r, &upstream);
  return upstream;
}

}  // namespace detail
}  // namespace wsgate::conf
