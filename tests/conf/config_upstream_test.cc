// [[upstream]] pool options (conf/config_upstream.cc): server tables with weight,
// max_connections and backup; balancer and hash_key; retries and passive ejection;
// [upstream.health_check]. Errors carry the position of the value at fault.
#include <doctest/doctest.h>

#include <string>

#include "conf/config_loader.h"

using namespace std::chrono_literals;
using namespace wsgate::conf;

namespace {

std::string doc(const std::string& upstream) {
  return "[[listener]]\naddress = \"127.0.0.1:8080\"\n"  // lines 1-2
         "[[upstream]]\nname = \"u\"\n" +                // lines 3-4
         upstream +
         "\n[[route]]\nupstream = \"u\"\n";
}

const Upstream& upstream_of(const LoadResult& r) {
  if (r.error) FAIL(r.error->to_string());
  return r.config->upstreams.at(0);
}

std::string error_of(const std::string& upstream) {
  const LoadResult r = load_config_text(doc(upstream), "t.toml");
  REQUIRE_FALSE(r.ok());
  return r.error->to_string();
}

}  // namespace

TEST_CASE("servers mix strings and inline tables with pool options") {
  const LoadResult r = load_config_text(
      doc(R"(servers = ["10.0.0.1:1", {address = "10.0.0.2:2", weight = 3, max_connections = 50},
           {address = "[::1]:3", backup = true}])"),
      "t.toml");
  const Upstream& u = upstream_of(r);
  REQUIRE(u.servers.size() == 3);
  CHECK(u.servers[0].text == "10.0.0.1:1");
  CHECK(u.servers[0].weight == 1);
  CHECK(u.servers[1].host == "10.0.0.2");
  CHECK(u.servers[1].port == 2);
  CHECK(u.servers[1].weight == 3);
  CHECK(u.servers[1].max_connections == 50);
  CHECK_FALSE(u.servers[1].backup);
  CHECK(u.servers[2].host == "::1");
  CHECK(u.servers[2].text == "[::1]:3");
  CHECK(u.servers[2].backup);
}

TEST_CASE("server table errors point at the value") {
  CHECK(error_of(R"(servers = [{address = "a:1", weight = 0}])") ==
        "t.toml:5:39: upstream.servers[0].weight: expected an integer in 1..1000, got integer 0");
  CHECK(error_of(R"(servers = [{address = "a:1", backup = "yes"}])") ==
        R"(t.toml:5:39: upstream.servers[0].backup: expected true or false, got "yes")");
  CHECK(error_of(R"(servers = [{weight = 2}])") ==
        R"(t.toml:5:12: [upstream.servers[0]] is missing the required key "address")");
  CHECK(error_of(R"(servers = [{address = "a:1", wieght = 2}])")
            .starts_with(R"(t.toml:5:30: unknown key "wieght" in [upstream.servers[0]])"));
  CHECK(
      error_of(R"(servers = [{address = "a b:1"}])") ==
      R"(t.toml:5:23: upstream.servers[0].address: expected "host:port" like "10.0.0.1:9001" or "backend:80", got "a b:1")");
  CHECK(error_of(R"(servers = ["a:1", {address = "a:1"}])") ==
        R"(t.toml:5:19: upstream.servers[1]: duplicate server "a:1")");
  CHECK(error_of(R"(servers = [{address = "a:1", backup = true}])") ==
        "t.toml:5:11: upstream.servers: every server is a backup; at least one must not be");
}

TEST_CASE("hash_key forms, and only with balancer = hash") {
  const auto key = [](const std::string& k) {
    const LoadResult r = load_config_text(
        doc("servers = [\"a:1\"]\nbalancer = \"hash\"\nhash_key = \"" + k + "\""), "t.toml");
    return upstream_of(r).hash_key;
  };
  CHECK(key("client_ip").source == HashKey::Source::ClientIp);
  CHECK(key("header:X-User").source == HashKey::Source::Header);
  CHECK(key("header:X-User").name == "X-User");
  CHECK(key("cookie:sid").source == HashKey::Source::Cookie);
  CHECK(key("query:user").name == "user");
  CHECK(
      error_of("servers = [\"a:1\"]\nbalancer = \"hash\"\nhash_key = \"header:\"") ==
      R"(t.toml:7:12: upstream.hash_key: expected "client_ip", "header:NAME", "cookie:NAME" or "query:NAME", got "header:")");
  CHECK(error_of("servers = [\"a:1\"]\nhash_key = \"client_ip\"") ==
        R"(t.toml:6:12: upstream.hash_key: only used with balancer = "hash")");
}

TEST_CASE("retries, passive ejection and health_check") {
  const LoadResult r = load_config_text(doc(R"(servers = ["a:1"]
retries = 1
eject_after_failures = 5
eject_duration = "30s"
[upstream.health_check]
type = "websocket"
path = "/health"
interval = "2s"
timeout = "500ms"
rise = 1
fall = 2)"),
                                        "t.toml");
  const Upstream& u = upstream_of(r);
  CHECK(u.retries == 1);
  CHECK(u.eject_after_failures == 5);
  CHECK(u.eject_duration == 30s);
  CHECK(u.health_check.enabled);
  CHECK(u.health_check.type == HealthCheck::Type::WebSocket);
  CHECK(u.health_check.path == "/health");
  CHECK(u.health_check.interval == 2s);
  CHECK(u.health_check.timeout == 500ms);
  CHECK(u.health_check.rise == 1);
  CHECK(u.health_check.fall == 2);
  const LoadResult http = load_config_text(doc(R"(servers = ["a:1"]
[upstream.health_check]
type = "http"
path = "/healthz?full=1"
expect_status = [200, 204])"),
                                           "t.toml");
  CHECK(upstream_of(http).health_check.type == HealthCheck::Type::Http);
  CHECK(upstream_of(http).health_check.path == "/healthz?full=1");
  CHECK(upstream_of(http).health_check.expect_status == std::vector<int>{200, 204});
  // Defaults when the table is present but empty.
  const LoadResult d = load_config_text(doc("servers = [\"a:1\"]\n[upstream.health_check]"), "t");
  CHECK(upstream_of(d).health_check.type == HealthCheck::Type::Tcp);
  CHECK(upstream_of(d).health_check.interval == 5s);
  CHECK(upstream_of(d).health_check.rise == 2);
  CHECK(upstream_of(d).health_check.fall == 3);
}

TEST_CASE("health_check errors") {
  CHECK(
      error_of("servers = [\"a:1\"]\n[upstream.health_check]\ntype = \"grpc\"") ==
      R"(t.toml:7:8: upstream.health_check.type: expected "tcp", "websocket" or "http", got "grpc")");
  CHECK(error_of("servers = [\"a:1\"]\n[upstream.health_check]\npath = \"/h\"") ==
        R"(t.toml:7:8: upstream.health_check.path: only used with type = "websocket" or "http")");
  CHECK(error_of("servers = [\"a:1\"]\n[upstream.health_check]\nexpect_status = [200]") ==
        R"(t.toml:7:17: upstream.health_check.expect_status: only used with type = "http")");
  CHECK(error_of("servers = [\"a:1\"]\n[upstream.health_check]\ntype = \"http\"\n"
                 "expect_status = [200, 99]") ==
        "t.toml:8:23: upstream.health_check.expect_status: expected a non-empty array of HTTP "
        "statuses 200..599, got integer 99");
  CHECK(error_of("servers = [\"a:1\"]\n[upstream.health_check]\ntype = \"http\"\n"
                 "expect_status = []")
            .starts_with("t.toml:8:17: upstream.health_check.expect_status: expected a non-empty "
                         "array of HTTP statuses 200..599"));
  CHECK(
      error_of(
          "servers = [\"a:1\"]\n[upstream.health_check]\ninterval = \"1s\"\ntimeout = \"2s\"") ==
      R"(t.toml:8:11: upstream.health_check.timeout: expected a duration no longer than interval (1000ms), got "2s")");
  CHECK(error_of("servers = [\"a:1\"]\n[upstream.health_check]\nfall = 0") ==
        "t.toml:7:8: upstream.health_check.fall: expected an integer in 1..100, got integer 0");
  CHECK(error_of("servers = [\"a:1\"]\n[upstream.health_check]\nrise = 1\nrisee = 2")
            .starts_with(R"(t.toml:8:1: unknown key "risee" in [upstream.health_check])"));
  CHECK(error_of("servers = [\"a:1\"]\nretries = -1") ==
        "t.toml:6:11: upstream.retries: expected an integer in 0..100, got integer -1");
}
