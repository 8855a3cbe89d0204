// Plain HTTP/2 CONNECT (RFC 9113 8.5) -> HTTP/1.1 CONNECT (gateway/h2_mapping.cc).
#include <doctest/doctest.h>

#include "gateway/h2_mapping.h"

using wsgate::gateway::h2map::Fields;
using wsgate::gateway::h2map::is_tunnel_request;
using wsgate::gateway::h2map::tunnel_connect_to_h1;

TEST_CASE("h2 tunnel: plain CONNECT is a tunnel, extended CONNECT and GET are not") {
  CHECK(is_tunnel_request({{":method", "CONNECT"}, {":authority", "a:443"}}));
  CHECK_FALSE(is_tunnel_request(
      {{":method", "CONNECT"}, {":protocol", "websocket"}, {":authority", "a:443"}}));
  CHECK_FALSE(is_tunnel_request({{":method", "GET"}, {":authority", "a:443"}}));
}

TEST_CASE("h2 tunnel: maps to CONNECT authority HTTP/1.1 with the regular fields") {
  const auto m = tunnel_connect_to_h1({{":method", "CONNECT"},
                                       {":authority", "example.com:443"},
                                       {"proxy-authorization", "Basic YTpi"},
                                       {"user-agent", "t"}});
  REQUIRE(m.ok());
  CHECK(m.head ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
        "proxy-authorization: Basic YTpi\r\nuser-agent: t\r\n\r\n");
}

TEST_CASE("h2 tunnel: RFC 9113 8.5 refusals") {
  CHECK(tunnel_connect_to_h1({{":method", "CONNECT"}}).status == 400);
  CHECK(tunnel_connect_to_h1({{":method", "CONNECT"}, {":authority", ""}}).status == 400);
  const auto path =
      tunnel_connect_to_h1({{":method", "CONNECT"}, {":authority", "a:1"}, {":path", "/"}});
  CHECK(path.status == 400);
  CHECK(path.reason == "CONNECT with :scheme or :path (RFC 9113 8.5)");
  CHECK(tunnel_connect_to_h1({{":method", "CONNECT"}, {":authority", "a:1"}, {":scheme", "https"}})
            .status == 400);
  CHECK(tunnel_connect_to_h1({{":method", "CONNECT"}, {":authority", "a:1"}, {"connection", "x"}})
            .status == 400);
  CHECK(tunnel_connect_to_h1({{":method", "CONNECT"}, {":authority", "a:1\r\nX: y"}}).status ==
        400);
}
