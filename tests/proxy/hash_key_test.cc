// The hash balancer's key (proxy/hash_key.cc): client IP, header, cookie, query.
#include "proxy/hash_key.h"

#include <doctest/doctest.h>

#include <string>

#include "gateway/h1/h1_request.h"

using namespace wsgate;

namespace {

http::RequestHead head_of(const std::string& text) {
  http1::RequestHead head;
  const auto r = http1::parse_request_head(text, http1::Limits{}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  auto mapped = gateway::h1::request_from_h1(head, "http");
  REQUIRE(mapped.ok());
  return mapped.value;
}

conf::HashKey key(conf::HashKey::Source source, std::string name = {}) {
  return conf::HashKey{source, std::move(name)};
}

}  // namespace

TEST_CASE("hash key: client_ip") {
  const auto head = head_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::ClientIp), "10.1.2.3", head) == "10.1.2.3");
}

TEST_CASE("hash key: header, any case, missing falls back to the client IP") {
  const auto head = head_of("GET / HTTP/1.1\r\nHost: a\r\nx-user:  alice \r\n\r\n");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Header, "X-User"), "ip", head) == "alice");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Header, "X-Other"), "ip", head) == "ip");
}

TEST_CASE("hash key: cookie among several, in several Cookie fields") {
  const auto head =
      head_of("GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; sidx=2\r\nCookie: b=3; sid=xyz\r\n\r\n");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Cookie, "sid"), "ip", head) == "xyz");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Cookie, "a"), "ip", head) == "1");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Cookie, "none"), "ip", head) == "ip");
}

TEST_CASE("hash key: query parameter") {
  const auto head = head_of("GET /chat?room=1&user=bob&x HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Query, "user"), "ip", head) == "bob");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Query, "room"), "ip", head) == "1");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Query, "use"), "ip", head) == "ip");
  const auto no_query = head_of("GET /chat HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(proxy::hash_key_text(key(conf::HashKey::Source::Query, "user"), "ip", no_query) == "ip");
}
