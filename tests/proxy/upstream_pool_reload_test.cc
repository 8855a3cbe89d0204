// Pool state carried over a reload (proxy/upstream_pool.cc, UpstreamPools built with
// `previous`): servers that stay keep connection counts, health and ejection; a server
// whose options changed gets a successor that still counts its predecessor's
// connections; removed and new servers do not inherit anything.
#include <doctest/doctest.h>

#include <string>

#include "proxy/balancer.h"
#include "proxy/upstream_pool.h"

using namespace wsgate;
using namespace wsgate::proxy;

namespace {

conf::UpstreamServer server(const std::string& host, unsigned weight = 1, unsigned max = 0) {
  conf::UpstreamServer s;
  s.host = host;
  s.port = 9000;
  s.text = host + ":9000";
  s.weight = weight;
  s.max_connections = max;
  return s;
}

conf::Upstream upstream(const std::string& name, std::vector<conf::UpstreamServer> servers) {
  conf::Upstream u;
  u.name = name;
  u.servers = std::move(servers);
  u.resolve_interval = std::chrono::seconds(0);
  return u;
}

conf::Config config_of(std::vector<conf::Upstream> upstreams) {
  conf::Config c;
  c.upstreams = std::move(upstreams);
  return c;
}

ServerPtr member(UpstreamPools& pools, const std::string& name, const std::string& text) {
  for (const auto& s : pools.find(name)->members()->servers)
    if (s->config.text == text) return s;
  return nullptr;
}

const http::RequestHead kHead;

}  // namespace

TEST_CASE("reload: an unchanged server keeps its very state") {
  const conf::Config before = config_of({upstream("u", {server("10.0.0.1"), server("10.0.0.2")})});
  UpstreamPools old_pools(before);
  ServerPtr a = member(old_pools, "u", "10.0.0.1:9000");
  REQUIRE(a->try_acquire());
  a->check_up = false;
  a->ejected_until_ms = 12345;
  a->transitions_down = 2;

  const conf::Config after = config_of({upstream("u", {server("10.0.0.1"), server("10.0.0.3")})});
  UpstreamPools new_pools(after, &old_pools);
  ServerPtr carried = member(new_pools, "u", "10.0.0.1:9000");
  CHECK(carried == a);  // the same object: counts, health and ejection simply continue
  CHECK(carried->connections() == 1);
  CHECK_FALSE(carried->check_up.load());
  CHECK(carried->ejected_until_ms.load() == 12345);
  CHECK(carried->transitions_down.load() == 2);
  CHECK(member(new_pools, "u", "10.0.0.2:9000") == nullptr);  // removed
  ServerPtr fresh = member(new_pools, "u", "10.0.0.3:9000");
  REQUIRE(fresh != nullptr);
  CHECK(fresh->connections() == 0);
  CHECK(fresh->check_up.load());
  a->release();
  CHECK(carried->connections() == 0);
}

TEST_CASE("reload: a server whose options changed counts its predecessor's connections") {
  const conf::Config before = config_of({upstream("u", {server("10.0.0.1", 1, 2)})});
  UpstreamPools old_pools(before);
  ServerPtr a = member(old_pools, "u", "10.0.0.1:9000");
  ServerLease one(a), two;
  REQUIRE(a->try_acquire());
  REQUIRE(a->try_acquire());
  two = ServerLease(a);
  a->consecutive_failures = 1;

  // Weight and max_connections change, and another server comes first in the list.
  const conf::Config after =
      config_of({upstream("u", {server("10.0.0.9"), server("10.0.0.1", 5, 3)})});
  UpstreamPools new_pools(after, &old_pools);
  ServerPtr next = member(new_pools, "u", "10.0.0.1:9000");
  REQUIRE(next != nullptr);
  CHECK(next != a);
  CHECK(next->predecessor == a);
  CHECK(next->config.weight == 5);
  CHECK(next->config_index == 1);
  CHECK(next->consecutive_failures.load() == 1);
  CHECK(next->connections() == 2);
  // max_connections 3 with 2 still held on the predecessor: one more, not three.
  CHECK(next->try_acquire());
  CHECK_FALSE(next->try_acquire());
  one.reset();  // a connection opened before the reload ends
  CHECK(next->connections() == 2);
  CHECK(next->try_acquire());
  CHECK(a->active.load() == 1);
  CHECK(next->active.load() == 2);
}

TEST_CASE("reload: least_conn in the new pools sees the connections that live on") {
  const conf::Config before = config_of({upstream("u", {server("10.0.0.1"), server("10.0.0.2")})});
  auto old_pools = std::make_shared<UpstreamPools>(before);
  Balancers old_balancers(old_pools, 1);
  std::vector<ServerLease> held;
  for (int i = 0; i < 4; ++i) {  // both servers hold two connections
    ServerSelection sel = old_balancers.select(before.upstreams[0], "ip", kHead);
    REQUIRE(sel.next() != nullptr);
    held.push_back(sel.succeeded());
  }
  // The reload gives 10.0.0.1 a max_connections (a successor), keeps 10.0.0.2 as it was.
  const conf::Config after = config_of(
      {upstream("u", {server("10.0.0.1", 1, 10), server("10.0.0.2"), server("10.0.0.3")})});
  auto new_pools = std::make_shared<UpstreamPools>(after, old_pools.get());
  Balancers new_balancers(new_pools, 1);
  // The new server has none: least_conn gives it the next two.
  for (int i = 0; i < 2; ++i) {
    ServerSelection sel = new_balancers.select(after.upstreams[0], "ip", kHead);
    const conf::UpstreamServer* s = sel.next();
    REQUIRE(s != nullptr);
    CHECK(s->host == "10.0.0.3");
    held.push_back(sel.succeeded());
  }
}

TEST_CASE("reload: an upstream renamed or new starts fresh, members found by DNS carry over") {
  conf::Upstream named = upstream("dns", {server("backend.test")});
  named.resolve_interval = std::chrono::seconds(30);
  const conf::Config before = config_of({upstream("u", {server("10.0.0.1")}), named});
  UpstreamPools old_pools(before);
  old_pools.find("dns")->set_addresses(0, {"10.1.0.1", "10.1.0.2"});
  ServerPtr a = member(old_pools, "u", "10.0.0.1:9000");
  REQUIRE(a->try_acquire());

  const conf::Config after = config_of({upstream("v", {server("10.0.0.1")}), named});
  UpstreamPools new_pools(after, &old_pools);
  CHECK(member(new_pools, "v", "10.0.0.1:9000")->connections() == 0);
  // The resolved members stay members until the new resolver's first answer.
  CHECK(new_pools.find("dns")->size() == 2);
  CHECK(member(new_pools, "dns", "10.1.0.1:9000") == member(old_pools, "dns", "10.1.0.1:9000"));

  // The same name, now resolved at each connect (resolve_interval 0): the configured
  // server is the member again, not the addresses found before.
  conf::Upstream per_connect = named;
  per_connect.resolve_interval = std::chrono::seconds(0);
  const conf::Config third = config_of({per_connect});
  UpstreamPools third_pools(third, &new_pools);
  REQUIRE(third_pools.find("dns")->size() == 1);
  CHECK(third_pools.find("dns")->server(0).config.text == "backend.test:9000");
  a->release();
}
