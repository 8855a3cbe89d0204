// [route.auth] type = "forward" (conf/config_auth.cc): defaults, every key, and the
// settings refused with their file:line:column.
#include <doctest/doctest.h>

#include <string>

#include "conf/config_loader.h"

using wsgate::conf::load_config_text;
using wsgate::conf::LoadResult;
using namespace std::chrono_literals;

namespace {

std::string doc(const std::string& auth) {
  return "[[listener]]\naddress = \"127.0.0.1:1\"\n"
         "[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9\"]\n"
         "[[upstream]]\nname = \"auth\"\nservers = [\"127.0.0.1:10\"]\n"
         "[[route]]\nupstream = \"app\"\n[route.auth]\ntype = \"forward\"\nupstream = \"auth\"\n" +
         auth;
}

}  // namespace

TEST_CASE("forward auth config: defaults") {
  LoadResult r = load_config_text(doc(""), "t.toml");
  REQUIRE(r.ok());
  const auto& f = r.config->routes[0].auth.forward;
  CHECK(r.config->routes[0].auth.type == wsgate::conf::RouteAuth::Type::Forward);
  CHECK(f.upstream == "auth");
  CHECK(f.path == "/");
  CHECK(f.request_headers == std::vector<std::string>{"authorization", "cookie"});
  CHECK(f.response_headers.empty());
  CHECK(f.timeout == 5s);
  CHECK_FALSE(f.failure_mode_allow);
  CHECK(f.cache_ttl == 0s);
  CHECK(f.cache_entries == 10000);
}

TEST_CASE("forward auth config: every key") {
  LoadResult r = load_config_text(
      doc("path = \"/verify?x=1\"\nrequest_headers = [\"Authorization\", \"X-Api-Key\"]\n"
          "response_headers = [\"X-User\"]\ntimeout = \"250ms\"\nfailure_mode_allow = true\n"
          "cache_ttl = \"30s\"\ncache_key = [\"x-api-key\"]\ncache_entries = 50\n"),
      "t.toml");
  REQUIRE(r.ok());
  const auto& f = r.config->routes[0].auth.forward;
  CHECK(f.path == "/verify?x=1");
  CHECK(f.request_headers == std::vector<std::string>{"authorization", "x-api-key"});
  CHECK(f.response_headers == std::vector<std::string>{"x-user"});
  CHECK(f.timeout == 250ms);
  CHECK(f.failure_mode_allow);
  CHECK(f.cache_ttl == 30s);
  CHECK(f.cache_key == std::vector<std::string>{"x-api-key"});
  CHECK(f.cache_entries == 50);
  // cache_key defaults to request_headers.
  LoadResult d =
      load_config_text(doc("request_headers = [\"x-api-key\"]\ncache_ttl = \"1s\"\n"), "t.toml");
  REQUIRE(d.ok());
  CHECK(d.config->routes[0].auth.forward.cache_key == std::vector<std::string>{"x-api-key"});
}

TEST_CASE("forward auth config: fields the gateway sets itself are refused where written") {
  LoadResult r =
      load_config_text(doc("request_headers = [\"authorization\", \"Host\"]\n"), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->to_string().rfind("t.toml:14:37: route.auth.request_headers", 0) == 0);
  CHECK(r.error->message.find("not Host") != std::string::npos);
  r = load_config_text(doc("request_headers = [\"X-Forwarded-For\"]\n"), "t.toml");
  REQUIRE(r.error);
  r = load_config_text(doc("response_headers = [\"x-user\", \"content-length\"]\n"), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->to_string().rfind("t.toml:14:31: route.auth.response_headers", 0) == 0);
  r = load_config_text(doc("response_headers = [\"Connection\"]\n"), "t.toml");
  REQUIRE(r.error);
}

TEST_CASE("forward auth config: a cache without a key is refused") {
  LoadResult r = load_config_text(doc("request_headers = []\ncache_ttl = \"10s\"\n"), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->to_string() ==
        "t.toml:15:13: route.auth.cache_key: empty, so every request would share one cached "
        "decision; name the header fields that say who the client is (default: "
        "request_headers)");
  r = load_config_text(doc("cache_ttl = \"10s\"\ncache_key = []\n"), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->to_string().rfind("t.toml:15:13: route.auth.cache_key: empty", 0) == 0);
}

TEST_CASE("forward auth config: an unknown upstream, a bad path, a zero timeout") {
  LoadResult r = load_config_text(
      "[[listener]]\naddress = \"127.0.0.1:1\"\n"
      "[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9\"]\n"
      "[[route]]\nupstream = \"app\"\n[route.auth]\ntype = \"forward\"\nupstream = \"nope\"\n",
      "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->message.rfind("route.auth.upstream: names upstream", 0) == 0);
  r = load_config_text(doc("path = \"verify\"\n"), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->message.rfind("route.auth.path: expected an origin-form path", 0) == 0);
  r = load_config_text(doc("timeout = \"0s\"\n"), "t.toml");
  REQUIRE(r.error);
}
