// Plain HTTP/2 CONNECT (RFC 9113 8.5) -> the protocol-neutral tunnel request
// (gateway/h2_mapping.cc).
#include <doctest/doctest.h>

#include "gateway/h2_mapping.h"

using wsgate::gateway::h2map::Fields;
using wsgate::gateway::h2map::request_from_h2;

namespace {
int status_of(const Fields& f) {
  return request_from_h2(f).refusal.status;
}
}  // namespace

TEST_CASE("h2 tunnel: plain CONNECT is a tunnel request, extended CONNECT is not") {
  const auto tunnel = request_from_h2({{":method", "CONNECT"}, {":authority", "a:443"}});
  REQUIRE(tunnel.ok());
  CHECK(tunnel.value.method == "CONNECT");
  CHECK(tunnel.value.protocol.empty());
  const auto ws = request_from_h2({{":method", "CONNECT"},
                                   {":protocol", "websocket"},
                                   {":scheme", "https"},
                                   {":path", "/"},
                                   {":authority", "a:443"}});
  REQUIRE(ws.ok());
  CHECK(ws.value.is_websocket());
}

TEST_CASE("h2 tunnel: the authority is the target, the regular fields are kept") {
  const auto m = request_from_h2({{":method", "CONNECT"},
                                  {":authority", "example.com:443"},
                                  {"proxy-authorization", "Basic YTpi"},
                                  {"user-agent", "t"}});
  REQUIRE(m.ok());
  CHECK(m.value.authority == "example.com:443");
  CHECK(m.value.path.empty());
  const wsgate::http::Fields want = {{"proxy-authorization", "Basic YTpi"}, {"user-agent", "t"}};
  CHECK(m.value.fields == want);
}

TEST_CASE("h2 tunnel: RFC 9113 8.5 refusals") {
  CHECK(status_of({{":method", "CONNECT"}}) == 400);
  CHECK(status_of({{":method", "CONNECT"}, {":authority", ""}}) == 400);
  const auto path =
      request_from_h2({{":method", "CONNECT"}, {":authority", "a:1"}, {":path", "/"}});
  CHECK(path.refusal.status == 400);
  CHECK(path.refusal.reason == "CONNECT with :scheme or :path (RFC 9113 8.5)");
  CHECK(status_of({{":method", "CONNECT"}, {":authority", "a:1"}, {":scheme", "https"}}) == 400);
  CHECK(status_of({{":method", "CONNECT"}, {":authority", "a:1"}, {"connection", "x"}}) == 400);
  CHECK(status_of({{":method", "CONNECT"}, {":authority", "a:1\r\nX: y"}}) == 400);
}
