// The gateway's own answers (gateway/exchange/error_response.h).
#include "gateway/exchange/error_response.h"

#include <doctest/doctest.h>

#include <string>

using wsgate::gateway::error_response;

TEST_CASE(
    "error response: status line, one-line text body, extra fields, never sniffed or cached") {
  const std::string r = error_response(405, "WebSocket handshake requires GET", {{"Allow", "GET"}});
  CHECK(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
  CHECK(r.find("\r\nContent-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
  CHECK(r.find("\r\nContent-Length: 33\r\n") != std::string::npos);
  CHECK(r.find("\r\nAllow: GET\r\n") != std::string::npos);
  CHECK(r.find("\r\nX-Content-Type-Options: nosniff\r\n") != std::string::npos);
  CHECK(r.find("\r\nCache-Control: no-store\r\n") != std::string::npos);
  CHECK(r.find("\r\nConnection: close\r\n\r\n") != std::string::npos);
  CHECK(r.ends_with("\r\n\r\nWebSocket handshake requires GET\n"));
}

TEST_CASE("error response: reason phrases of the forwarding refusals") {
  CHECK(error_response(413, "x", {}).starts_with("HTTP/1.1 413 Content Too Large\r\n"));
  CHECK(error_response(417, "x", {}).starts_with("HTTP/1.1 417 Expectation Failed\r\n"));
}
