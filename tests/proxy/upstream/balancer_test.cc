// Server selection for one connection (proxy/upstream/balancer.cc,
// proxy/upstream/upstream_pool.cc): backups, max_connections, retries never repeating a server,
// passive ejection, the shared connection counts that least_conn reads, and the 503 reason.
#include "proxy/upstream/balancer.h"

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace wsgate;
using namespace wsgate::proxy;

namespace {

conf::UpstreamServer server(const std::string& host, unsigned weight = 1, unsigned max = 0,
                            bool backup = false) {
  conf::UpstreamServer s;
  s.host = host;
  s.port = 9000;
  s.text = host + ":9000";
  s.weight = weight;
  s.max_connections = max;
  s.backup = backup;
  return s;
}

conf::Config config_with(std::vector<conf::UpstreamServer> servers,
                         conf::Balancer b = conf::Balancer::LeastConn) {
  conf::Config c;
  conf::Upstream u;
  // A moved-in string, not `= "u"`: GCC 12 with -fsanitize=address warns falsely
  // (-Wrestrict, GCC bug 105651) about assigning a short literal.
  u.name = std::string("u");
  u.servers = std::move(servers);
  u.balancer = b;
  u.resolve_interval = std::chrono::seconds(0);  // names are members as they are
  c.upstreams.push_back(u);
  return c;
}

const http::RequestHead kHead;

}  // namespace

TEST_CASE("selection: backups only when no primary can take the connection") {
  const conf::Config c = config_with({server("a"), server("b", 1, 0, true)});
  auto pools = std::make_shared<UpstreamPools>(c);
  Balancers balancers(pools, 1);
  for (int i = 0; i < 5; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    CHECK(sel.next()->host == "a");
  }
  pools->at(0).server(0).check_up = false;  // the health check says a is down
  ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
  CHECK(sel.next()->host == "b");
}

TEST_CASE("selection: a held lease counts for least_conn in every worker's balancer") {
  const conf::Config c = config_with({server("a"), server("b")});
  auto pools = std::make_shared<UpstreamPools>(c);
  Balancers worker1(pools, 1), worker2(pools, 2);
  std::vector<ServerLease> held;
  for (int i = 0; i < 10; ++i) {
    ServerSelection sel = (i % 2 ? worker1 : worker2).select(c.upstreams[0], "ip", kHead);
    REQUIRE(sel.next() != nullptr);
    held.push_back(sel.succeeded());
  }
  CHECK(pools->at(0).server(0).active == 5);
  CHECK(pools->at(0).server(1).active == 5);
  held.clear();  // the connections end
  CHECK(pools->at(0).server(0).active == 0);
  CHECK(pools->at(0).server(1).active == 0);
}

TEST_CASE("selection: max_connections is a hard limit, full everywhere -> none, with a reason") {
  const conf::Config c = config_with({server("a", 1, 2), server("b", 1, 1)});
  auto pools = std::make_shared<UpstreamPools>(c);
  Balancers balancers(pools, 1);
  std::vector<ServerLease> held;
  for (int i = 0; i < 3; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    REQUIRE(sel.next() != nullptr);
    held.push_back(sel.succeeded());
  }
  ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
  CHECK(sel.next() == nullptr);
  CHECK(sel.unavailable_reason() ==
        "no server of upstream u can take the connection: a:9000 at max_connections 2, "
        "b:9000 at max_connections 1");
  held.pop_back();
  ServerSelection again = balancers.select(c.upstreams[0], "ip", kHead);
  CHECK(again.next() != nullptr);
}

TEST_CASE("selection: retries try other servers, each once, at most 1 + retries") {
  conf::Config c = config_with({server("a"), server("b"), server("c"), server("d")});
  c.upstreams[0].retries = 2;
  c.upstreams[0].eject_after_failures = 0;
  auto pools = std::make_shared<UpstreamPools>(c);
  Balancers balancers(pools, 1);
  ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
  std::set<std::string> tried;
  while (const conf::UpstreamServer* s = sel.next()) {
    CHECK(tried.insert(s->host).second);
    sel.failed("refused");
  }
  CHECK(tried.size() == 3);
  CHECK(sel.attempts() == 3);
  // Failed attempts gave their slots back.
  for (std::size_t i = 0; i < 4; ++i) CHECK(pools->at(0).server(i).active == 0);
}

TEST_CASE("passive health: consecutive failures eject for the backoff, then it returns") {
  conf::Config c = config_with({server("a"), server("b")});
  c.upstreams[0].eject_after_failures = 3;
  c.upstreams[0].eject_duration = std::chrono::milliseconds(1000);
  Pool pool(c.upstreams[0]);
  CHECK_FALSE(pool.record_failure(pool.server(0), "refused", 100));
  CHECK_FALSE(pool.record_failure(pool.server(0), "refused", 100));
  Pool::record_success(pool.server(0));  // a success in between starts the count again
  CHECK_FALSE(pool.record_failure(pool.server(0), "refused", 100));
  CHECK_FALSE(pool.record_failure(pool.server(0), "refused", 100));
  CHECK(pool.available(pool.server(0), 100));
  CHECK(pool.record_failure(pool.server(0), "refused", 100));  // third in a row: ejected
  CHECK_FALSE(pool.available(pool.server(0), 100));
  CHECK_FALSE(pool.available(pool.server(0), 1099));
  CHECK(pool.available(pool.server(1), 500));
  CHECK(pool.describe_unavailable(500) ==
        "a:9000 ejected after failures, b:9000 failed this request");
  CHECK(pool.available(pool.server(0), 1100));  // the backoff ran out
  CHECK(pool.server(0).ejected_until_ms == 0);
}

TEST_CASE("passive health: 502, 503 and 504 answers count as failures, others reset the count") {
  CHECK(gateway_failure(502));
  CHECK(gateway_failure(503));
  CHECK(gateway_failure(504));
  for (const int status : {0, 101, 200, 404, 500, 501, 505}) CHECK_FALSE(gateway_failure(status));
  conf::Config c = config_with({server("a")});
  c.upstreams[0].eject_after_failures = 2;
  c.upstreams[0].eject_duration = std::chrono::seconds(60);
  auto pools = std::make_shared<UpstreamPools>(c);
  Balancers balancers(pools, 1);
  const auto answer = [&](int status) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    REQUIRE(sel.next() != nullptr);
    return sel.succeeded(status);  // the lease is released at once
  };
  answer(503);
  answer(500);  // not a gateway failure: the count starts again
  answer(504);
  CHECK(pools->at(0).available(pools->at(0).server(0), steady_now_ms()));
  answer(502);  // second in a row: ejected
  CHECK_FALSE(pools->at(0).available(pools->at(0).server(0), steady_now_ms()));
  CHECK(pools->at(0).server(0).transitions_down == 1);
}

TEST_CASE("selection: nothing available -> no attempt and a 503 reason naming each server") {
  const conf::Config c = config_with({server("a"), server("b")});
  auto pools = std::make_shared<UpstreamPools>(c);
  pools->at(0).server(0).check_up = false;
  pools->at(0).server(1).check_up = false;
  Balancers balancers(pools, 1);
  ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
  CHECK(sel.next() == nullptr);
  CHECK(sel.attempts() == 0);
  CHECK(sel.unavailable_reason() ==
        "no server of upstream u can take the connection: a:9000 down (health check), b:9000 "
        "down (health check)");
}

TEST_CASE("slow start: a server back from down gets a ramped share, not every connection") {
  conf::Config c = config_with({server("a"), server("b")});
  c.upstreams[0].slow_start = std::chrono::seconds(100);
  auto pools = std::make_shared<UpstreamPools>(c);
  Pool& pool = pools->at(0);
  pool.server(0).active = 100;  // a holds 100 long-lived connections, b restarted empty
  const std::int64_t now = steady_now_ms();
  pool.mark_back(pool.server(1), now);
  CHECK(pool.effective_weight(pool.server(0), now) == 100);
  CHECK(pool.effective_weight(pool.server(1), now) == 10);  // the 10% floor
  CHECK(pool.effective_weight(pool.server(1), now + 50'000) == 50);
  CHECK(pool.effective_weight(pool.server(1), now + 100'000) == 100);

  Balancers balancers(pools, 1);
  std::vector<ServerLease> held;
  int to_b = 0;
  for (int i = 0; i < 50; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    const conf::UpstreamServer* s = sel.next();
    REQUIRE(s != nullptr);
    to_b += s->host == "b" ? 1 : 0;
    held.push_back(sel.succeeded());
  }
  // At 10% weight b balances at about a tenth of a's count: 10-15 of 50, not all 50
  // (which plain least_conn gives an empty server).
  MESSAGE("slow start: " << to_b << " of 50 new connections to the recovering server");
  CHECK(to_b >= 10);
  CHECK(to_b <= 16);
}

TEST_CASE("slow start off: the empty server takes the new connections until it catches up") {
  const conf::Config c = config_with({server("a"), server("b")});
  auto pools = std::make_shared<UpstreamPools>(c);
  pools->at(0).server(0).active = 100;
  Pool::mark_back(pools->at(0).server(1), steady_now_ms());
  Balancers balancers(pools, 1);
  std::vector<ServerLease> held;
  for (int i = 0; i < 50; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    CHECK(sel.next()->host == "b");
    held.push_back(sel.succeeded());
  }
}

TEST_CASE("membership: a name's addresses become members, one that leaves drains") {
  conf::Config c = config_with({server("10.0.0.1"), server("svc.local", 2)});
  c.upstreams[0].resolve_interval = std::chrono::seconds(30);
  c.upstreams[0].balancer = conf::Balancer::RoundRobin;
  auto pools = std::make_shared<UpstreamPools>(c);
  Pool& pool = pools->at(0);
  // Until its first answer the name has no member; the 503 reason says so.
  REQUIRE(pool.size() == 1);
  CHECK(pool.describe_unavailable(0) ==
        "10.0.0.1:9000 failed this request, svc.local:9000 has no address (not resolved)");
  const auto generation = pool.generation();
  const auto [added, removed] = pool.set_addresses(1, {"10.1.0.1", "10.1.0.2"});
  CHECK(added == std::vector<std::string>{"10.1.0.1:9000", "10.1.0.2:9000"});
  CHECK(removed.empty());
  CHECK(pool.generation() > generation);
  REQUIRE(pool.size() == 3);
  CHECK(pool.server(1).config.weight == 2);  // options come from the configured name
  CHECK(pool.server(1).config.host == "10.1.0.1");

  Balancers balancers(pools, 1);
  std::vector<ServerLease> held;
  std::set<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    seen.insert(sel.next()->text);
    held.push_back(sel.succeeded());
  }
  CHECK(seen == std::set<std::string>{"10.0.0.1:9000", "10.1.0.1:9000", "10.1.0.2:9000"});

  // 10.1.0.2 leaves the answer: no new connection goes there, the held ones keep their
  // slot (they drain) and the state outlives the pool's membership.
  ServerState* leaving = &pool.server(2);
  const auto still = leaving->active.load();
  CHECK(still > 0);
  const auto [added2, removed2] = pool.set_addresses(1, {"10.1.0.1"});
  CHECK(added2.empty());
  CHECK(removed2 == std::vector<std::string>{"10.1.0.2:9000"});
  CHECK(pool.size() == 2);
  for (int i = 0; i < 10; ++i) {
    ServerSelection sel = balancers.select(c.upstreams[0], "ip", kHead);
    CHECK(sel.next()->text != "10.1.0.2:9000");
  }
  CHECK(leaving->active.load() == still);
  // The same answer again changes nothing.
  const auto same = pool.generation();
  const auto [added3, removed3] = pool.set_addresses(1, {"10.1.0.1"});
  CHECK(added3.empty());
  CHECK(removed3.empty());
  CHECK(pool.generation() == same);
  held.clear();  // the drained connections end; their states go with the last lease
}
