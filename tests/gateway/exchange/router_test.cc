#include <doctest/doctest.h>

#include "gateway/exchange/router.h"

using wsgate::gateway::match_route;
using wsgate::gateway::normalize_host;
using wsgate::gateway::target_path;

namespace {

wsgate::conf::Config config_with(
    std::initializer_list<std::pair<const char*, const char*>> routes) {
  wsgate::conf::Config c;
  for (const auto& [host, path] : routes) {
    wsgate::conf::Route r;
    r.host = host;
    r.path = path;
    r.name = std::string(host) + path;
    c.routes.push_back(r);
  }
  return c;
}

}  // namespace

TEST_CASE("normalize_host strips the port and lowercases") {
  CHECK(normalize_host("Example.COM:8080") == "example.com");
  CHECK(normalize_host("example.com") == "example.com");
  CHECK(normalize_host("[::1]:8080") == "[::1]");
  CHECK(normalize_host("") == "");
}

TEST_CASE("target_path drops the query and handles the absolute form") {
  CHECK(target_path("/echo?x=1") == "/echo");
  CHECK(target_path("/echo#frag") == "/echo");
  CHECK(target_path("http://example.com/chat/room?x") == "/chat/room");
  CHECK(target_path("http://example.com") == "/");
}

TEST_CASE("path prefixes match on segment boundaries") {
  const auto c = config_with({{"*", "/echo"}});
  CHECK(match_route(c, "h", "/echo") != nullptr);
  CHECK(match_route(c, "h", "/echo/room") != nullptr);
  CHECK(match_route(c, "h", "/echoes") == nullptr);
  CHECK(match_route(c, "h", "/") == nullptr);
}

TEST_CASE("the longest path prefix wins") {
  const auto c = config_with({{"*", "/"}, {"*", "/api"}, {"*", "/api/v2"}});
  CHECK(match_route(c, "h", "/api/v2/x")->path == "/api/v2");
  CHECK(match_route(c, "h", "/api/v1")->path == "/api");
  CHECK(match_route(c, "h", "/other")->path == "/");
}

TEST_CASE("exact host beats wildcard beats any") {
  const auto c = config_with({{"*", "/"}, {"*.example.com", "/"}, {"chat.example.com", "/"}});
  CHECK(match_route(c, "chat.example.com", "/")->host == "chat.example.com");
  CHECK(match_route(c, "api.example.com", "/")->host == "*.example.com");
  CHECK(match_route(c, "a.b.example.com", "/")->host == "*.example.com");
  // "*.example.com" does not match the bare domain.
  CHECK(match_route(c, "example.com", "/")->host == "*");
  CHECK(match_route(c, "other.org", "/")->host == "*");
}

TEST_CASE("a host-specific route wins over a longer path on any host") {
  const auto c = config_with({{"*", "/echo/deep"}, {"example.com", "/"}});
  CHECK(match_route(c, "example.com", "/echo/deep")->host == "example.com");
  CHECK(match_route(c, "other", "/echo/deep")->host == "*");
  CHECK(match_route(c, "other", "/x") == nullptr);
}
