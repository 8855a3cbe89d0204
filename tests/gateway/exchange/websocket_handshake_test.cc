#include "gateway/exchange/websocket_handshake.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

using wsgate::gateway::HandshakeVerdict;
using wsgate::gateway::validate_upgrade_request;
using wsgate::http1::Limits;
using wsgate::http1::parse_request_head;
using wsgate::http1::ParseState;
using wsgate::http1::RequestHead;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// RFC 6455 1.2: the client's opening handshake.
Fields rfc_fields() {
  return {
      {"Host", "server.example.com"},   {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"Origin", "http://example.com"}, {"Sec-WebSocket-Protocol", "chat, superchat"},
      {"Sec-WebSocket-Version", "13"},
  };
}

Fields without(Fields f, std::string_view name) {
  std::erase_if(f, [name](const auto& kv) { return kv.first == name; });
  return f;
}

Fields with(Fields f, std::string_view name, std::string_view value) {
  for (auto& kv : f) {
    if (kv.first == name) {
      kv.second = value;
      return f;
    }
  }
  f.emplace_back(name, value);
  return f;
}

Fields plus(Fields f, std::string_view name, std::string_view value) {
  f.emplace_back(name, value);
  return f;
}

// Parses a real head, so the checks see exactly what the gateway will see.
RequestHead make(const Fields& fields, std::string_view request_line = "GET /chat HTTP/1.1") {
  std::string raw(request_line);
  raw += "\r\n";
  for (const auto& [name, value] : fields)
    raw.append(name).append(": ").append(value).append("\r\n");
  raw += "\r\n";
  RequestHead head;
  const auto r = parse_request_head(raw, Limits{}, head);
  REQUIRE_MESSAGE(r.state == ParseState::Complete, r.error_reason);
  return head;
}

HandshakeVerdict check(const Fields& fields, std::string_view request_line = "GET /chat HTTP/1.1",
                       const std::vector<std::string>& origins = {}, bool require_origin = false) {
  return validate_upgrade_request(make(fields, request_line), {origins, require_origin});
}

bool has_header(const HandshakeVerdict& v, std::string_view name, std::string_view value) {
  for (const auto& [n, val] : v.refusal.fields) {
    if (n == name && val == value) return true;
  }
  return false;
}

void expect_reject(const HandshakeVerdict& v, int status) {
  CHECK_FALSE(v.ok());
  CHECK(v.refusal.status == status);
  CHECK_FALSE(v.refusal.reason.empty());
  CHECK(v.refusal.reason.find_first_of("\r\n") == std::string::npos);
}

}  // namespace

TEST_CASE("handshake: the RFC 6455 example request is valid") {
  const HandshakeVerdict v = check(rfc_fields());
  CHECK(v.ok());
  CHECK(v.refusal.status == 0);
  CHECK(v.refusal.reason.empty());
  CHECK(v.refusal.fields.empty());
}

TEST_CASE("handshake: valid variants") {
  SUBCASE("field names and token values in any case") {
    Fields f = {
        {"host", "server.example.com"},  {"UPGRADE", "WebSocket"},
        {"connection", "UPGRADE"},       {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
        {"SEC-WEBSOCKET-VERSION", "13"},
    };
    CHECK(check(f).ok());
  }
  SUBCASE("Connection: keep-alive, Upgrade") {
    CHECK(check(with(rfc_fields(), "Connection", "keep-alive, Upgrade")).ok());
    CHECK(check(with(rfc_fields(), "Connection", "Upgrade,keep-alive")).ok());
  }
  SUBCASE("Connection split over two fields (RFC 9110 5.3)") {
    Fields f = with(rfc_fields(), "Connection", "keep-alive");
    CHECK(check(plus(f, "Connection", "Upgrade")).ok());
  }
  SUBCASE("Upgrade listing other protocols too") {
    CHECK(check(with(rfc_fields(), "Upgrade", "h2c, websocket")).ok());
  }
  SUBCASE("no Origin, no subprotocol") {
    CHECK(check(without(without(rfc_fields(), "Origin"), "Sec-WebSocket-Protocol")).ok());
  }
  SUBCASE("version with OWS around it") {
    CHECK(check(with(rfc_fields(), "Sec-WebSocket-Version", " 13\t")).ok());
  }
  SUBCASE("any target") {
    CHECK(check(rfc_fields(), "GET /a/b?c=d HTTP/1.1").ok());
  }
}

TEST_CASE("handshake: method must be GET -> 405 with Allow") {
  for (std::string_view method : {"POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "get", "Get"}) {
    CAPTURE(method);
    const HandshakeVerdict v = check(rfc_fields(), std::string(method) + " /chat HTTP/1.1");
    expect_reject(v, 405);
    CHECK(has_header(v, "Allow", "GET"));
  }
}

TEST_CASE("handshake: HTTP/1.0 -> 400") {
  expect_reject(check(rfc_fields(), "GET /chat HTTP/1.0"), 400);
}

TEST_CASE("handshake: Host must be present exactly once -> 400") {
  expect_reject(check(without(rfc_fields(), "Host")), 400);
  expect_reject(check(plus(rfc_fields(), "Host", "other.example.com")), 400);
  expect_reject(check(plus(rfc_fields(), "host", "server.example.com")), 400);
  expect_reject(check(with(rfc_fields(), "Host", "")), 400);
}

TEST_CASE("handshake: not an upgrade at all -> 426 naming websocket") {
  SUBCASE("RFC request without Upgrade") {
    const HandshakeVerdict v = check(without(rfc_fields(), "Upgrade"));
    expect_reject(v, 426);
    CHECK(has_header(v, "Upgrade", "websocket"));
    CHECK(has_header(v, "Connection", "Upgrade"));
  }
  SUBCASE("a plain GET") {
    const HandshakeVerdict v = check({{"Host", "server.example.com"}}, "GET / HTTP/1.1");
    expect_reject(v, 426);
    CHECK(has_header(v, "Upgrade", "websocket"));
  }
}

TEST_CASE("handshake: Upgrade without the websocket token -> 400") {
  for (std::string_view value :
       {"h2c", "websockets", "web socket", "websocket/13", "", "TLS/1.2"}) {
    CAPTURE(value);
    expect_reject(check(with(rfc_fields(), "Upgrade", value)), 400);
  }
}

TEST_CASE("handshake: Connection without the upgrade token -> 400") {
  for (std::string_view value : {"keep-alive", "close", "upgrades", "keep-alive upgrade", ""}) {
    CAPTURE(value);
    expect_reject(check(with(rfc_fields(), "Connection", value)), 400);
  }
  expect_reject(check(without(rfc_fields(), "Connection")), 400);
  // The token in another field does not count.
  expect_reject(
      check(plus(with(rfc_fields(), "Connection", "keep-alive"), "X-Connection", "Upgrade")), 400);
}

TEST_CASE("handshake: Sec-WebSocket-Key missing, invalid or duplicated -> 400") {
  expect_reject(check(without(rfc_fields(), "Sec-WebSocket-Key")), 400);
  for (std::string_view key : {"", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZR==",
                               "AAECAwQFBgcICQoLDA0ODxA=", "dGhlIHNhbXBsZSBub25j-Q=="}) {
    CAPTURE(key);
    expect_reject(check(with(rfc_fields(), "Sec-WebSocket-Key", key)), 400);
  }
  expect_reject(check(plus(rfc_fields(), "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")), 400);
  expect_reject(check(plus(rfc_fields(), "sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw==")), 400);
}

TEST_CASE("handshake: wrong or missing Sec-WebSocket-Version -> 426 with version 13") {
  SUBCASE("missing") {
    const HandshakeVerdict v = check(without(rfc_fields(), "Sec-WebSocket-Version"));
    expect_reject(v, 426);
    CHECK(has_header(v, "Sec-WebSocket-Version", "13"));
  }
  for (std::string_view value : {"8", "7", "12", "14", "013", "13, 8", "", "thirteen"}) {
    CAPTURE(value);
    const HandshakeVerdict v = check(with(rfc_fields(), "Sec-WebSocket-Version", value));
    expect_reject(v, 426);
    CHECK(has_header(v, "Sec-WebSocket-Version", "13"));
  }
  SUBCASE("twice -> 400 (RFC 6455 11.3.5)") {
    expect_reject(check(plus(rfc_fields(), "Sec-WebSocket-Version", "13")), 400);
  }
}

TEST_CASE("handshake: Origin policy -> 403") {
  const std::vector<std::string> allowed = {"https://app.example.com", "https://admin.example.com"};
  const auto origin = [&](std::string_view value) {
    return check(with(rfc_fields(), "Origin", value), "GET /chat HTTP/1.1", allowed);
  };

  SUBCASE("empty allowed list: any Origin, or none") {
    CHECK(check(with(rfc_fields(), "Origin", "https://evil.example")).ok());
    CHECK(check(without(rfc_fields(), "Origin")).ok());
    CHECK(check(with(rfc_fields(), "Origin", "null")).ok());
  }
  SUBCASE("exact match, ignoring ASCII case") {
    CHECK(origin("https://app.example.com").ok());
    CHECK(origin("https://admin.example.com").ok());
    CHECK(origin("HTTPS://APP.Example.COM").ok());
  }
  SUBCASE("anything else is refused") {
    for (std::string_view value :
         {"https://evil.example", "http://app.example.com", "https://app.example.com:443",
          "https://app.example.com/", "https://app.example.com.evil.example",
          "https://evil.app.example.com", "https://app.example.co", "null", ""}) {
      CAPTURE(value);
      expect_reject(origin(value), 403);
    }
  }
  SUBCASE("missing Origin with a non-empty list: not a browser, passes by default") {
    CHECK(check(without(rfc_fields(), "Origin"), "GET /chat HTTP/1.1", allowed).ok());
    CHECK(check(without(rfc_fields(), "Origin"), "GET /chat HTTP/1.1", allowed, false).ok());
  }
  SUBCASE("missing Origin with require_origin -> 403") {
    const HandshakeVerdict v =
        check(without(rfc_fields(), "Origin"), "GET /chat HTTP/1.1", allowed, true);
    expect_reject(v, 403);
    CHECK(v.refusal.reason == "missing Origin header");
  }
  SUBCASE("require_origin changes nothing for requests that carry Origin") {
    const auto strict = [&](std::string_view value) {
      return check(with(rfc_fields(), "Origin", value), "GET /chat HTTP/1.1", allowed, true);
    };
    CHECK(strict("https://app.example.com").ok());
    expect_reject(strict("https://evil.example"), 403);
  }
  SUBCASE("two Origin fields") {
    expect_reject(check(plus(with(rfc_fields(), "Origin", "https://app.example.com"), "Origin",
                             "https://evil.example"),
                        "GET /chat HTTP/1.1", allowed),
                  403);
  }
}

TEST_CASE("handshake: the first failing rule decides the status") {
  // Non-GET wins over everything else.
  expect_reject(check({{"Host", "x"}}, "POST / HTTP/1.1"), 405);
  // A missing Host is reported before the missing Upgrade.
  expect_reject(check({}, "GET / HTTP/1.1"), 400);
  // A bad Origin does not hide a malformed handshake.
  expect_reject(check(with(without(rfc_fields(), "Sec-WebSocket-Key"), "Origin", "https://evil"),
                      "GET /chat HTTP/1.1", {"https://app.example.com"}),
                400);
}
