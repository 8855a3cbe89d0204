#include "proxy/codec/response_field.h"

#include <doctest/doctest.h>

#include <string>

using namespace wsgate;

namespace {

http1::ResponseHead parse(const std::string& text) {
  http1::ResponseHead head;
  REQUIRE(http1::parse_response_head(text, http1::Limits{}, head).state ==
          http1::ParseState::Complete);
  return head;
}

}  // namespace

TEST_CASE("response field: appended last, raw bytes and parsed fields agree") {
  http1::ResponseHead head = parse(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  REQUIRE(proxy::append_response_field(head, "Set-Cookie", "srv=ab; Path=/"));
  CHECK(head.raw ==
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSet-Cookie: srv=ab; Path=/\r\n\r\n");
  CHECK(head.status == 101);
  REQUIRE(head.headers.size() == 4);
  CHECK(head.headers.back().name == "Set-Cookie");
  CHECK(head.headers.back().value == "srv=ab; Path=/");
  CHECK(head.find("upgrade")->value == "websocket");
}

TEST_CASE("response field: a value that would split the head is refused") {
  http1::ResponseHead head =
      parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  const std::string before = head.raw;
  CHECK_FALSE(proxy::append_response_field(head, "Set-Cookie", "a=1\r\n\r\nX: y"));
  CHECK(head.raw == before);
  CHECK(head.headers.size() == 1);
}
