// ClientLimits: counting, the token bucket (with an injected clock), IPv6 prefix
// grouping, the fixed-size table, and the HTTP answers for refusals.
#include "gateway/client_limits.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gateway/exchange/limit_refusal.h"
#include "metrics/metric_names.h"

using namespace wsgate;
using gateway::ClientKey;
using gateway::ClientLimits;
using gateway::Limit;

namespace {

ClientKey key(const std::string& ip, unsigned prefix = 64) {
  const auto k = ClientKey::from_ip(ip, prefix);
  REQUIRE(k.has_value());
  return *k;
}

const ClientLimits::Clock::time_point t0{std::chrono::seconds(1000)};

ClientLimits::Clock::time_point at_ms(long ms) {
  return t0 + std::chrono::milliseconds(ms);
}

}  // namespace

TEST_CASE("client keys: IPv4 by address, IPv6 by prefix, IPv4-mapped as IPv4") {
  CHECK(key("192.0.2.1") == key("192.0.2.1"));
  CHECK_FALSE(key("192.0.2.1") == key("192.0.2.2"));
  CHECK(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"));  // same /64
  CHECK_FALSE(key("2001:db8:1:2::1") == key("2001:db8:1:3::1"));
  CHECK(key("2001:db8:1:2::1", 48) == key("2001:db8:1:3::1", 48));
  CHECK_FALSE(key("2001:db8::1", 128) == key("2001:db8::2", 128));
  CHECK(key("2001:db8:1:2::1", 60) == key("2001:db8:1:f::1", 60));
  CHECK_FALSE(key("2001:db8:1:2::1", 60) == key("2001:db8:1:12::1", 60));
  CHECK(key("::ffff:192.0.2.1") == key("192.0.2.1"));
  CHECK_FALSE(key("::1").v6 == false);
  CHECK_FALSE(ClientKey::from_ip("not-an-ip", 64).has_value());

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8:1:2:3:4:5:6", &in6.sin6_addr);
  CHECK(ClientKey::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), 64) ==
        key("2001:db8:1:2::"));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "198.51.100.7", &in.sin_addr);
  CHECK(ClientKey::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), 64) ==
        key("198.51.100.7"));
}

TEST_CASE("per-client count: refused above the limit, counted while open, released once") {
  conf::Limits l;
  l.max_connections_per_client = 2;
  ClientLimits limits(l);
  const ClientKey a = key("192.0.2.1");
  const ClientKey b = key("192.0.2.2");
  std::vector<ClientLimits::Decision> open;
  open.push_back(limits.admit(a, t0));
  open.push_back(limits.admit(a, t0));
  CHECK_FALSE(open[0].refused());
  CHECK_FALSE(open[1].refused());
  ClientLimits::Decision third = limits.admit(a, t0);
  CHECK(third.exceeded == Limit::PerClient);
  CHECK(third.retry_after_s >= 1);
  CHECK_FALSE(third.close_now);
  CHECK(limits.open_for(a) == 3);              // the refused one counts while its socket is open
  CHECK_FALSE(limits.admit(b, t0).refused());  // another client is not affected
  third.slot.release();
  third.slot.release();  // a second release does nothing
  CHECK(limits.open_for(a) == 2);
  open.pop_back();  // a connection ends
  CHECK(limits.open_for(a) == 1);
  CHECK_FALSE(limits.admit(a, t0).refused());  // (its slot ends with the temporary)
  CHECK(limits.open_total() == 1);
  open.clear();
  CHECK(limits.open_total() == 0);
  CHECK(limits.open_for(a) == 0);
}

TEST_CASE("per-client count: more than twice over closes at once") {
  conf::Limits l;
  l.max_connections_per_client = 1;
  ClientLimits limits(l);
  const ClientKey a = key("192.0.2.1");
  auto d1 = limits.admit(a, t0);
  auto d2 = limits.admit(a, t0);
  auto d3 = limits.admit(a, t0);
  CHECK_FALSE(d1.refused());
  CHECK(d2.exceeded == Limit::PerClient);
  CHECK_FALSE(d2.close_now);
  CHECK(d3.exceeded == Limit::PerClient);
  CHECK(d3.close_now);
}

TEST_CASE("moving a slot moves the count, and it is released exactly once") {
  conf::Limits l;
  l.max_connections_per_client = 5;
  ClientLimits limits(l);
  const ClientKey a = key("192.0.2.1");
  {
    ClientLimits::Decision d = limits.admit(a, t0);
    ClientLimits::Slot moved = std::move(d.slot);
    CHECK_FALSE(d.slot.held());
    CHECK(moved.held());
    CHECK(limits.open_for(a) == 1);
    ClientLimits::Slot again;
    again = std::move(moved);
    CHECK(limits.open_for(a) == 1);
  }
  CHECK(limits.open_for(a) == 0);
  CHECK(limits.open_total() == 0);
}

TEST_CASE("max_connections counts every client together, more than twice over closes") {
  conf::Limits l;
  l.max_connections = 2;
  ClientLimits limits(l);
  auto a = limits.admit(key("192.0.2.1"), t0);
  auto b = limits.admit(key("192.0.2.2"), t0);
  auto c = limits.admit(key("192.0.2.3"), t0);
  CHECK_FALSE(a.refused());
  CHECK_FALSE(b.refused());
  CHECK(c.exceeded == Limit::MaxConnections);
  CHECK_FALSE(c.close_now);
  auto d = limits.admit(key("192.0.2.4"), t0);
  auto e = limits.admit(key("192.0.2.5"), t0);
  CHECK(e.close_now);
  CHECK(limits.open_total() == 5);
  c = {};
  d = {};
  e = {};
  b = {};
  CHECK(limits.open_total() == 1);
  CHECK_FALSE(limits.admit(key("192.0.2.9"), t0).refused());
}

TEST_CASE("rate: a burst, then one token per 1/rate seconds, with Retry-After") {
  conf::Limits l;
  l.new_connections_per_second_per_client = 2;  // one token every 500 ms
  l.new_connections_burst = 3;
  ClientLimits limits(l);
  const ClientKey a = key("192.0.2.1");
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limits.admit(a, at_ms(0)).refused());
  ClientLimits::Decision d = limits.admit(a, at_ms(0));
  CHECK(d.exceeded == Limit::Rate);
  CHECK(d.retry_after_s == 1);
  CHECK(limits.admit(a, at_ms(400)).refused());  // refusals take no token
  CHECK_FALSE(limits.admit(a, at_ms(500)).refused());
  CHECK(limits.admit(a, at_ms(600)).refused());
  CHECK_FALSE(limits.admit(a, at_ms(1000)).refused());
  // Long idle: the bucket refills only up to the burst.
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limits.admit(a, at_ms(60'000)).refused());
  CHECK(limits.admit(a, at_ms(60'000)).refused());
  // Another client has its own bucket.
  CHECK_FALSE(limits.admit(key("192.0.2.2"), at_ms(60'000)).refused());
}

TEST_CASE("rate: a slow rate gives a Retry-After of several seconds") {
  conf::Limits l;
  l.new_connections_per_second_per_client = 0.1;  // one every 10 s
  l.new_connections_burst = 1;
  ClientLimits limits(l);
  const ClientKey a = key("192.0.2.1");
  CHECK_FALSE(limits.admit(a, at_ms(0)).refused());
  ClientLimits::Decision d = limits.admit(a, at_ms(2000));
  CHECK(d.exceeded == Limit::Rate);
  CHECK(d.retry_after_s == 8);
  CHECK_FALSE(limits.admit(a, at_ms(10'000)).refused());
}

TEST_CASE("rate: IPv6 clients of one /64 share a bucket") {
  conf::Limits l;
  l.new_connections_per_second_per_client = 1;
  l.new_connections_burst = 1;
  ClientLimits limits(l);
  CHECK_FALSE(limits.admit(key("2001:db8:0:1::1"), t0).refused());
  CHECK(limits.admit(key("2001:db8:0:1::2"), t0).refused());
  CHECK_FALSE(limits.admit(key("2001:db8:0:2::1"), t0).refused());
}

TEST_CASE("the table has a fixed size, idle clients are evicted, busy ones never") {
  conf::Limits l;
  l.max_connections_per_client = 1;
  l.client_table_size = 64;
  ClientLimits limits(l);
  CHECK(limits.capacity() == 64);
  // A flood of distinct clients that each hold a connection: the table fills, and then
  // new clients are refused (fail closed) instead of the table growing.
  std::vector<ClientLimits::Decision> held;
  int refused = 0;
  for (int i = 0; i < 1000; ++i) {
    ClientLimits::Decision d =
        limits.admit(key("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)), t0);
    if (d.exceeded == Limit::ClientTable) {
      refused++;
    } else {
      CHECK_FALSE(d.refused());
      held.push_back(std::move(d));
    }
  }
  CHECK(held.size() <= 64);
  CHECK(held.size() >= 32);  // hashing spreads them over the sets
  CHECK(refused == 1000 - static_cast<int>(held.size()));
  CHECK(limits.open_total() == held.size());
  // Once they close, their entries are idle and new clients get them.
  held.clear();
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    ClientLimits::Decision d =
        limits.admit(key("10.9." + std::to_string(i / 256) + "." + std::to_string(i % 256)), t0);
    if (!d.refused()) admitted++;
  }
  CHECK(admitted == 1000);  // each one closed (its slot ended) before the next came
  CHECK(limits.open_total() == 0);
}

TEST_CASE("a client holding a connection keeps its entry whatever passes through") {
  conf::Limits l;
  l.max_connections_per_client = 1;
  l.new_connections_per_second_per_client = 1;
  l.new_connections_burst = 1;
  l.client_table_size = 64;
  ClientLimits limits(l);
  const ClientKey a = key("192.0.2.1");
  ClientLimits::Decision held = limits.admit(a, t0);
  CHECK_FALSE(held.refused());
  // 500 other clients come and go (each slot ends at once): they evict each other.
  for (int i = 0; i < 500; ++i)
    CHECK_FALSE(
        limits
            .admit(key("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)), at_ms(i))
            .refused());
  CHECK(limits.open_for(a) == 1);
  CHECK(limits.admit(a, at_ms(5000)).exceeded == Limit::PerClient);
}

TEST_CASE("refusals: 429 for a client's limits, 503 when the gateway is full") {
  conf::Limits l;
  l.max_connections = 10;
  l.max_connections_per_client = 2;
  l.new_connections_per_second_per_client = 0.5;
  l.new_connections_burst = 4;
  ClientLimits::Decision d;
  d.exceeded = Limit::PerClient;
  d.retry_after_s = 1;
  http::Refusal r = gateway::refusal_for(d, l);
  CHECK(r.status == 429);
  CHECK(r.reason ==
        "connection limit reached: max_connections_per_client = 2 for this client address");
  REQUIRE(r.fields.size() == 1);
  CHECK(r.fields[0].first == "Retry-After");
  CHECK(r.fields[0].second == "1");
  d.exceeded = Limit::Rate;
  d.retry_after_s = 2;
  r = gateway::refusal_for(d, l);
  CHECK(r.status == 429);
  CHECK(r.reason ==
        "connection rate limit reached: new_connections_per_second_per_client = 0.5 (burst 4) "
        "for this client address");
  CHECK(r.fields[0].second == "2");
  d.exceeded = Limit::MaxConnections;
  r = gateway::refusal_for(d, l);
  CHECK(r.status == 503);
  CHECK(r.reason == "connection limit reached: max_connections = 10 for the whole gateway");
  d.exceeded = Limit::ClientTable;
  CHECK(gateway::refusal_for(d, l).status == 503);
}

TEST_CASE("limit names match the metric's label values") {
  const Limit all[] = {Limit::MaxConnections, Limit::PerClient, Limit::Rate, Limit::ClientTable};
  // The [limits] ones, then the HTTP/2 stream rate (not a [limits] value).
  REQUIRE(std::size(all) + 1 == metrics::names::kLimitValues.size());
  CHECK(metrics::names::kLimitValues.back() == metrics::names::kLimitH2StreamRate);
  for (std::size_t i = 0; i < std::size(all); ++i)
    CHECK(std::string_view(gateway::to_string(all[i])) == metrics::names::kLimitValues[i]);
}

TEST_CASE("a reload's new numbers apply in place: established connections stay counted") {
  conf::Limits l;
  l.max_connections_per_client = 4;
  auto limits = std::make_shared<ClientLimits>(l);
  const ClientKey a = key("192.0.2.1");
  std::vector<ClientLimits::Decision> open;
  for (int i = 0; i < 3; ++i) open.push_back(limits->admit(a, t0));
  for (const auto& d : open) CHECK_FALSE(d.refused());

  conf::Limits tighter = l;
  tighter.max_connections_per_client = 2;
  REQUIRE(limits->can_update_to(tighter));
  limits->update(tighter);
  CHECK(limits->admit(a, t0).exceeded == Limit::PerClient);  // 3 open already, limit 2

  conf::Limits other_prefix = l;
  other_prefix.client_ipv6_prefix = 48;
  CHECK_FALSE(limits->can_update_to(other_prefix));  // grouping changes need a new table
  conf::Limits no_table;
  no_table.max_connections = 10;
  ClientLimits total_only(no_table);
  CHECK_FALSE(total_only.can_update_to(l));  // per-client limits need a table it lacks
  CHECK(total_only.can_update_to(no_table));
}

TEST_CASE("a slot keeps a shared table alive after its owner let it go") {
  conf::Limits l;
  l.max_connections_per_client = 1;
  auto limits = std::make_shared<ClientLimits>(l);
  std::weak_ptr<ClientLimits> watch = limits;
  ClientLimits::Decision d = limits->admit(key("192.0.2.1"), t0);
  limits.reset();  // a reload replaced the table
  CHECK_FALSE(watch.expired());
  d.slot.release();
  CHECK(watch.expired());
}
