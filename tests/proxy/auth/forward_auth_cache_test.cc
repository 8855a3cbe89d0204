// Forward auth's decision cache (proxy/auth/forward_auth_cache.cc): keys, TTL, LRU order,
// the entry and byte bounds, scopes per route and reload.
#include "proxy/auth/forward_auth_cache.h"

#include <doctest/doctest.h>

#include <string>

using namespace wsgate;
using proxy::ForwardAuthCache;
using proxy::ForwardAuthVerdict;
using namespace std::chrono_literals;

namespace {

http::RequestHead with_fields(http::Fields fields) {
  http::RequestHead r;
  r.method = "GET";
  r.path = "/";
  r.authority = "a";
  r.fields = std::move(fields);
  return r;
}

ForwardAuthVerdict allowed(const std::string& user) {
  ForwardAuthVerdict v;
  v.kind = ForwardAuthVerdict::Kind::Allowed;
  v.upstream_fields = {{"X-User", user}};
  return v;
}

ForwardAuthVerdict denied(std::size_t body_size) {
  ForwardAuthVerdict v;
  v.kind = ForwardAuthVerdict::Kind::Denied;
  v.status = 401;
  v.client_fields = {{"WWW-Authenticate", "Bearer"}};
  v.body.assign(body_size, 'x');
  return v;
}

proxy::ForwardAuthCacheKey key_of(const std::string& token) {
  conf::ForwardAuth f;
  f.cache_key = {"authorization"};
  return proxy::forward_auth_cache_key(f, with_fields({{"Authorization", "Bearer " + token}}));
}

const ForwardAuthCache::Clock::time_point t0{};

}  // namespace

TEST_CASE("forward auth cache key: the cache_key fields' values, nothing else") {
  conf::ForwardAuth f;
  f.cache_key = {"authorization", "cookie"};
  const auto base = proxy::forward_auth_cache_key(
      f, with_fields({{"Authorization", "Bearer a"}, {"X-Other", "1"}}));
  // Other fields, the path and the field names' case do not matter.
  http::RequestHead other = with_fields({{"authorization", "Bearer a"}, {"X-Other", "2"}});
  other.path = "/elsewhere";
  CHECK(proxy::forward_auth_cache_key(f, other) == base);
  // The values do.
  CHECK(proxy::forward_auth_cache_key(f, with_fields({{"Authorization", "Bearer b"}})) != base);
  CHECK(proxy::forward_auth_cache_key(
            f, with_fields({{"Authorization", "Bearer a"}, {"Cookie", "s=1"}})) != base);
  // Absent differs from empty, and the split between values counts.
  CHECK(proxy::forward_auth_cache_key(f, with_fields({})) !=
        proxy::forward_auth_cache_key(f, with_fields({{"Authorization", ""}})));
  CHECK(proxy::forward_auth_cache_key(f, with_fields({{"Cookie", "ab"}, {"Cookie", "c"}})) !=
        proxy::forward_auth_cache_key(f, with_fields({{"Cookie", "a"}, {"Cookie", "bc"}})));
  // A value moved from one field to another is another key.
  CHECK(proxy::forward_auth_cache_key(f, with_fields({{"Authorization", "x"}})) !=
        proxy::forward_auth_cache_key(f, with_fields({{"Cookie", "x"}})));
}

TEST_CASE("forward auth cache: a hit within the ttl, a miss after it") {
  ForwardAuthCache cache(10);
  cache.insert(key_of("a"), allowed("alice"), t0, 1000ms);
  auto hit = cache.find(key_of("a"), t0 + 999ms);
  REQUIRE(hit);
  CHECK(hit->cached);
  CHECK(hit->kind == ForwardAuthVerdict::Kind::Allowed);
  CHECK(hit->upstream_fields == http::Fields{{"X-User", "alice"}});
  CHECK_FALSE(cache.find(key_of("b"), t0 + 1ms));
  CHECK_FALSE(cache.find(key_of("a"), t0 + 1000ms));  // expired: dropped
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
}

TEST_CASE("forward auth cache: failures and no-store answers are never kept") {
  ForwardAuthCache cache(10);
  ForwardAuthVerdict failed;
  failed.kind = ForwardAuthVerdict::Kind::Failed;
  failed.reason = "auth service timed out after 5ms";
  cache.insert(key_of("f"), failed, t0, 10s);
  ForwardAuthVerdict no_store = denied(10);
  no_store.no_store = true;
  cache.insert(key_of("n"), no_store, t0, 10s);
  cache.insert(key_of("z"), allowed("zed"), t0, 0s);
  CHECK(cache.size() == 0);
  cache.insert(key_of("d"), denied(10), t0, 10s);
  auto hit = cache.find(key_of("d"), t0 + 1s);
  REQUIRE(hit);
  CHECK(hit->status == 401);
  CHECK(hit->body == std::string(10, 'x'));
}

TEST_CASE("forward auth cache: at most max_entries, least recently used out first") {
  ForwardAuthCache cache(3);
  cache.insert(key_of("1"), allowed("1"), t0, 60s);
  cache.insert(key_of("2"), allowed("2"), t0, 60s);
  cache.insert(key_of("3"), allowed("3"), t0, 60s);
  CHECK(cache.find(key_of("1"), t0 + 1s));  // 1 is now the most recently used
  cache.insert(key_of("4"), allowed("4"), t0 + 2s, 60s);
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.find(key_of("2"), t0 + 3s));
  CHECK(cache.find(key_of("1"), t0 + 3s));
  CHECK(cache.find(key_of("3"), t0 + 3s));
  CHECK(cache.find(key_of("4"), t0 + 3s));
  // Replacing a key keeps one entry for it.
  cache.insert(key_of("4"), denied(1), t0 + 4s, 60s);
  CHECK(cache.size() == 3);
  CHECK(cache.find(key_of("4"), t0 + 5s)->kind == ForwardAuthVerdict::Kind::Denied);
  cache.set_max_entries(1);
  cache.insert(key_of("5"), allowed("5"), t0 + 6s, 60s);
  CHECK(cache.size() == 1);
  CHECK(cache.find(key_of("5"), t0 + 7s));
}

TEST_CASE("forward auth cache: memory is bounded by bytes as well as entries") {
  ForwardAuthCache cache(1000, 200 * 1024);
  for (int i = 0; i < 20; ++i) cache.insert(key_of(std::to_string(i)), denied(60 * 1024), t0, 60s);
  CHECK(cache.bytes() <= 200 * 1024);
  CHECK(cache.size() == 3);
  CHECK(cache.find(key_of("19"), t0 + 1s));
  CHECK_FALSE(cache.find(key_of("0"), t0 + 1s));
  ForwardAuthCache tiny(1000, 1024);
  tiny.insert(key_of("big"), denied(4096), t0, 60s);  // larger than the bound alone
  CHECK(tiny.size() == 0);
}

TEST_CASE("forward auth caches: one per auth scope, a changed auth setup starts empty") {
  conf::Route route;
  route.name = "chat";
  route.auth.type = conf::RouteAuth::Type::Forward;
  route.auth.forward.upstream = "auth";
  route.auth.forward.path = "/check";
  route.auth.forward.cache_ttl = 10s;
  proxy::ForwardAuthCaches caches;
  ForwardAuthCache& first = caches.for_route(route, t0);
  first.insert(key_of("a"), allowed("alice"), t0, 10s);
  conf::Route same = route;  // a reload that changed nothing of the auth
  same.upstream = "other-app";
  CHECK(&caches.for_route(same, t0 + 1s) == &first);
  CHECK(caches.for_route(same, t0 + 1s).find(key_of("a"), t0 + 1s));

  conf::Route moved = route;  // the auth service's path changed: its decisions may too
  moved.auth.forward.path = "/check2";
  ForwardAuthCache& second = caches.for_route(moved, t0 + 2s);
  CHECK(&second != &first);
  CHECK_FALSE(second.find(key_of("a"), t0 + 2s));
  conf::Route renamed = route;
  renamed.name = "chat2";
  CHECK(&caches.for_route(renamed, t0 + 2s) != &first);
  CHECK(caches.scopes() == 3);

  // Once every entry of the old scopes has expired, a new scope clears them out.
  conf::Route later = route;
  later.auth.forward.response_headers = {"x-user"};
  caches.for_route(later, t0 + 60s);
  CHECK(caches.scopes() == 1);
}
