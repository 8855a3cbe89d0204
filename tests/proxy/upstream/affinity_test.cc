// Session affinity by cookie (proxy/upstream/affinity.cc, ServerSelection in
// proxy/upstream/balancer.cc): the value names a server opaquely and stably, the
// request's cookie is found among others, and the named server is tried first while it
// can take the connection.
#include "proxy/upstream/affinity.h"

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "proxy/upstream/balancer.h"

using namespace wsgate;
using namespace wsgate::proxy;

namespace {

conf::UpstreamServer server(const std::string& host, unsigned max = 0) {
  conf::UpstreamServer s;
  s.host = host;
  s.port = 9000;
  s.text = host + ":9000";
  s.max_connections = max;
  return s;
}

conf::Config config_with(std::vector<conf::UpstreamServer> servers) {
  conf::Config c;
  conf::Upstream u;
  u.name = std::string("u");
  u.servers = std::move(servers);
  u.balancer = conf::Balancer::RoundRobin;
  u.resolve_interval = std::chrono::seconds(0);
  u.affinity_cookie = std::string("srv");
  c.upstreams.push_back(u);
  return c;
}

http::RequestHead with_cookie(const std::string& value) {
  http::RequestHead r;
  r.fields.push_back({"Cookie", value});
  return r;
}

}  // namespace

TEST_CASE("affinity: the value is 16 hex digits, stable, per upstream, without the address") {
  const conf::UpstreamServer a = server("10.0.0.1");
  const std::string v = affinity_value("u", a);
  CHECK(v.size() == 16);
  CHECK(v.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(v == affinity_value("u", a));
  CHECK(v != affinity_value("other", a));
  CHECK(v != affinity_value("u", server("10.0.0.2")));
  CHECK(v.find("10.0.0.1") == std::string::npos);
  CHECK(affinity_set_cookie("srv", v) == "srv=" + v + "; Path=/; HttpOnly; SameSite=Lax");
}

TEST_CASE("affinity: the request's cookie is found among others and in later fields") {
  http::RequestHead r = with_cookie("a=1; srvx=2;srv=abc ; b=3");
  r.fields.push_back({"Cookie", "srv=later"});
  CHECK(request_cookie(r, "srv") == std::string_view("abc"));
  CHECK(request_cookie(with_cookie("a=1"), "srv") == std::nullopt);
  http::RequestHead split = with_cookie("a=1");
  split.fields.push_back({"cookie", "srv=second"});
  CHECK(request_cookie(split, "srv") == std::string_view("second"));
}

TEST_CASE("affinity: the named server is chosen while it can take the connection") {
  const conf::Config c = config_with({server("a"), server("b"), server("c", 1)});
  auto pools = std::make_shared<UpstreamPools>(c);
  Balancers balancers(pools, 1);
  const std::string to_b = "srv=" + affinity_value("u", c.upstreams[0].servers[1]);
  for (int i = 0; i < 6; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", with_cookie(to_b));
    CHECK(sel.next()->host == "b");
  }
  // Without the cookie, round robin spreads the requests.
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", http::RequestHead());
    seen.insert(sel.next()->host);
  }
  CHECK(seen.size() == 3);
  // b down: another server, and the cookie is not an error.
  pools->at(0).server(1).check_up = false;
  ServerSelection down = balancers.select(c.upstreams[0], "ip", with_cookie(to_b));
  CHECK(down.next()->host != "b");
  // c full (max_connections 1, one lease held): another server.
  const std::string to_c = "srv=" + affinity_value("u", c.upstreams[0].servers[2]);
  ServerSelection first = balancers.select(c.upstreams[0], "ip", with_cookie(to_c));
  REQUIRE(first.next()->host == "c");
  ServerLease held = first.succeeded();
  ServerSelection second = balancers.select(c.upstreams[0], "ip", with_cookie(to_c));
  CHECK(second.next()->host != "c");
  // A value naming no member: the balancer chooses.
  ServerSelection unknown = balancers.select(c.upstreams[0], "ip", with_cookie("srv=0123"));
  CHECK(unknown.next() != nullptr);
}

TEST_CASE("affinity: the answer sets the cookie unless the request already names the server") {
  const conf::Config c = config_with({server("10.0.0.1"), server("10.0.0.2")});
  const conf::Upstream& u = c.upstreams[0];
  const conf::UpstreamServer& a = u.servers[0];
  const std::string va = affinity_value("u", a);
  CHECK(affinity_cookie_for(u, a, http::RequestHead{}) == affinity_set_cookie("srv", va));
  CHECK(affinity_cookie_for(u, a, with_cookie("x=1; srv=" + va)) == std::nullopt);
  // A cookie naming another server is replaced.
  CHECK(affinity_cookie_for(u, a, with_cookie("srv=" + affinity_value("u", u.servers[1]))) ==
        affinity_set_cookie("srv", va));
  conf::Upstream plain = u;
  plain.affinity_cookie.clear();
  CHECK(affinity_cookie_for(plain, a, http::RequestHead{}) == std::nullopt);
}
