#include "proxy/upstream/response_head_reader.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using namespace wsgate;

namespace {

struct Buffer {
  std::unique_ptr<evbuffer, decltype(&evbuffer_free)> buf{evbuffer_new(), &evbuffer_free};
  void add(std::string_view s) const { evbuffer_add(buf.get(), s.data(), s.size()); }
  [[nodiscard]] std::string rest() const {
    std::string out(evbuffer_get_length(buf.get()), '\0');
    evbuffer_copyout(buf.get(), out.data(), out.size());
    return out;
  }
};

constexpr http1::Limits kLimits{16 * 1024, 100};
constexpr std::string_view k101 =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

}  // namespace

TEST_CASE("response head reader: interim 1xx responses are skipped (RFC 9110 15.2)") {
  Buffer b;
  b.add("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
  b.add(k101);
  b.add("\x81\x02hi");
  http1::ResponseHead head;
  int interim = 0;
  const http1::ParseResult r = proxy::read_final_response_head(b.buf.get(), kLimits, head, interim);
  REQUIRE(r.state == http1::ParseState::Complete);
  CHECK(head.status == 101);
  CHECK(interim == 2);
  CHECK(r.head_length == k101.size());
  // The final head stays for the caller; the interim ones are gone.
  CHECK(b.rest() == std::string(k101) + "\x81\x02hi");
}

TEST_CASE("response head reader: a final status after interim ones is the answer") {
  Buffer b;
  b.add("HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  http1::ResponseHead head;
  int interim = 0;
  REQUIRE(proxy::read_final_response_head(b.buf.get(), kLimits, head, interim).state ==
          http1::ParseState::Complete);
  CHECK(head.status == 403);
  CHECK(interim == 1);
}

TEST_CASE("response head reader: pieces arrive over several reads") {
  Buffer b;
  http1::ResponseHead head;
  int interim = 0;
  b.add("HTTP/1.1 103 Early");
  CHECK(proxy::read_final_response_head(b.buf.get(), kLimits, head, interim).state ==
        http1::ParseState::Incomplete);
  b.add(" Hints\r\n\r\nHTTP/1.1 101 Swi");
  CHECK(proxy::read_final_response_head(b.buf.get(), kLimits, head, interim).state ==
        http1::ParseState::Incomplete);
  CHECK(interim == 1);
  b.add("tching Protocols\r\n\r\n");
  CHECK(proxy::read_final_response_head(b.buf.get(), kLimits, head, interim).state ==
        http1::ParseState::Complete);
  CHECK(head.status == 101);
  CHECK(interim == 1);
}

TEST_CASE("response head reader: more than the bound of interim responses is an error") {
  Buffer b;
  for (int i = 0; i < proxy::kMaxInterimResponses; ++i) b.add("HTTP/1.1 103 Early Hints\r\n\r\n");
  http1::ResponseHead head;
  int interim = 0;
  CHECK(proxy::read_final_response_head(b.buf.get(), kLimits, head, interim).state ==
        http1::ParseState::Incomplete);
  CHECK(interim == proxy::kMaxInterimResponses);
  b.add("HTTP/1.1 100 Continue\r\n\r\n");
  const http1::ParseResult r = proxy::read_final_response_head(b.buf.get(), kLimits, head, interim);
  CHECK(r.state == http1::ParseState::Error);
  CHECK(r.error_reason == "more than 8 interim (1xx) responses before the answer");
}
