// [route.auth] (conf/config_auth.cc): the jwt and forward forms, their defaults, and the
// errors with their positions.
#include <doctest/doctest.h>

#include <string>

#include "conf/config_loader.h"

using namespace std::chrono_literals;
using namespace wsgate::conf;

namespace {

std::string doc(const std::string& auth) {
  return "[[listener]]\naddress = \"127.0.0.1:8080\"\n"
         "[[upstream]]\nname = \"echo\"\nservers = [\"127.0.0.1:9001\"]\n"
         "[[upstream]]\nname = \"authsvc\"\nservers = [\"127.0.0.1:9002\"]\n"
         "[[route]]\nupstream = \"echo\"\n[route.auth]\n" +
         auth + "\n";
}

std::string error_of(const std::string& auth) {
  const LoadResult r = load_config_text(doc(auth), "/etc/wsgate/wsgate.toml");
  REQUIRE(r.error.has_value());
  return r.error->to_string();
}

}  // namespace

TEST_CASE("route.auth jwt: keys, token places, claims and their defaults") {
  const LoadResult r = load_config_text(doc(R"(type = "jwt"
jwks_file = "keys/jwks.json"
public_key_files = ["/k/rsa.pem"]
token_from = ["subprotocol:bearer.", "cookie:jwt", "query:access_token", "bearer"]
issuer = "https://idp"
audiences = ["chat"]
clock_skew = "5s"
required_claims = ["sub"]
claim_headers = { sub = "X-User", email = "X-Email" }
strip_token = true)"),
                                        "/etc/wsgate/wsgate.toml");
  REQUIRE_MESSAGE(r.ok(), (r.error ? r.error->to_string() : ""));
  const RouteAuth& a = r.config->routes.at(0).auth;
  CHECK(a.type == RouteAuth::Type::Jwt);
  CHECK(a.jwt.jwks_file == "/etc/wsgate/keys/jwks.json");  // relative to the config file
  CHECK(a.jwt.public_key_files == std::vector<std::string>{"/k/rsa.pem"});
  REQUIRE(a.jwt.token_from.size() == 4);
  CHECK(a.jwt.token_from[0].kind == JwtAuth::TokenSource::Kind::Subprotocol);
  CHECK(a.jwt.token_from[0].name == "bearer.");
  CHECK(a.jwt.token_from[3].kind == JwtAuth::TokenSource::Kind::Bearer);
  CHECK(a.jwt.clock_skew == 5s);
  CHECK(a.jwt.claim_headers.size() == 2);
  CHECK(a.jwt.strip_token);
  CHECK(a.jwt.close_on_expiry);

  const LoadResult plain =
      load_config_text(doc("type = \"jwt\"\nhmac_secret_file = \"s\""), "w.toml");
  REQUIRE(plain.ok());
  const JwtAuth& d = plain.config->routes.at(0).auth.jwt;
  CHECK(d.token_from.size() == 1);
  CHECK(d.token_from[0].kind == JwtAuth::TokenSource::Kind::Bearer);
  CHECK(d.clock_skew == 30s);
  CHECK_FALSE(d.strip_token);
}

TEST_CASE("route.auth forward: upstream, headers, cache") {
  const LoadResult r = load_config_text(doc(R"(type = "forward"
upstream = "authsvc"
path = "/check?v=1"
request_headers = ["Authorization", "cookie"]
response_headers = ["x-user"]
timeout = "2s"
cache_ttl = "30s")"),
                                        "w.toml");
  REQUIRE_MESSAGE(r.ok(), (r.error ? r.error->to_string() : ""));
  const ForwardAuth& f = r.config->routes.at(0).auth.forward;
  CHECK(f.upstream == "authsvc");
  CHECK(f.path == "/check?v=1");
  CHECK(f.request_headers == std::vector<std::string>{"authorization", "cookie"});
  CHECK(f.cache_key == f.request_headers);  // by default the headers sent
  CHECK(f.timeout == 2s);
  CHECK(f.cache_ttl == 30s);
  CHECK_FALSE(f.failure_mode_allow);
}

TEST_CASE("route.auth jwks_url: http and https URLs, refresh and CA") {
  const LoadResult r = load_config_text(
      doc("type = \"jwt\"\njwks_url = \"https://[::1]:8443/.well-known/jwks.json\"\n"
          "jwks_refresh = \"1m\"\njwks_ca = \"ca.pem\""),
      "/etc/wsgate/wsgate.toml");
  REQUIRE_MESSAGE(r.ok(), (r.error ? r.error->to_string() : ""));
  const JwtAuth& j = r.config->routes.at(0).auth.jwt;
  CHECK(j.jwks_https);
  CHECK(j.jwks_host == "::1");
  CHECK(j.jwks_port == 8443);
  CHECK(j.jwks_path == "/.well-known/jwks.json");
  CHECK(j.jwks_refresh == 1min);
  CHECK(j.jwks_ca == "/etc/wsgate/ca.pem");
  const LoadResult plain =
      load_config_text(doc("type = \"jwt\"\njwks_url = \"http://idp.test\""), "w.toml");
  REQUIRE(plain.ok());
  CHECK(plain.config->routes.at(0).auth.jwt.jwks_port == 80);
  CHECK(plain.config->routes.at(0).auth.jwt.jwks_path == "/");
  for (const char* bad : {"ftp://idp/jwks", "http://", "http://user@idp/", "http://idp:0/",
                          "http://idp:70000/", "http://[::1/", "idp.test/jwks"}) {
    CAPTURE(bad);
    CHECK(error_of(std::string("type = \"jwt\"\njwks_url = \"") + bad + "\"")
              .find("route.auth.jwks_url: expected a URL") != std::string::npos);
  }
  CHECK(error_of("type = \"jwt\"\njwks_file = \"k\"\njwks_refresh = \"1m\"")
            .find("has no effect without route.auth.jwks_url") != std::string::npos);
}

TEST_CASE("route.auth errors name the value at fault with its position") {
  CHECK(error_of("jwks_file = \"k\"") ==
        "/etc/wsgate/wsgate.toml:11:1: [route.auth] is missing the required key \"type\"");
  CHECK(error_of("type = \"oauth\"").find(R"(route.auth.type: expected "jwt" or "forward")") !=
        std::string::npos);
  CHECK(error_of("type = \"jwt\"").find("a jwt check needs keys") != std::string::npos);
  CHECK(error_of("type = \"jwt\"\njwks_file = \"k\"\ntoken_from = [\"header\"]")
            .find(R"(route.auth.token_from)") != std::string::npos);
  CHECK(error_of("type = \"jwt\"\njwks_file = \"k\"\nalgorithms = [\"none\"]")
            .find(R"(route.auth.algorithms)") != std::string::npos);
  CHECK(error_of("type = \"jwt\"\njwks_file = \"k\"\nclaim_headers = { sub = \"X User\" }")
            .find("route.auth.claim_headers.sub: expected a header field name") !=
        std::string::npos);
  CHECK(error_of("type = \"jwt\"\njwks_file = \"k\"\nupstream = \"authsvc\"")
            .find(R"(unknown key "upstream")") != std::string::npos);
  CHECK(error_of("type = \"forward\"\nupstream = \"nope\"")
            .find(R"(route.auth.upstream: names upstream "nope", which is not defined)") !=
        std::string::npos);
  CHECK(error_of("type = \"forward\"\nupstream = \"authsvc\"\ncache_key = [\"cookie\"]")
            .find("has no effect without route.auth.cache_ttl") != std::string::npos);
  CHECK(error_of("type = \"forward\"\nupstream = \"authsvc\"\npath = \"auth\"")
            .find("route.auth.path") != std::string::npos);
}
