#include "proxy/codec/http1_body.h"

#include <doctest/doctest.h>

#include <string>

using namespace wsgate;
using http1::BodyKind;
using http1::BodyStep;

namespace {

http1::RequestHead request(const std::string& text) {
  http1::RequestHead head;
  const auto r = http1::parse_request_head(text, http1::Limits{}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  return head;
}

http1::ResponseHead response(const std::string& text) {
  http1::ResponseHead head;
  const auto r = http1::parse_response_head(text, http1::Limits{}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  return head;
}

struct Decoded {
  std::string content;
  bool done = false;
  std::string error;
  std::string rest;  // input left after the body (the next message)
};

// Feeds `input` in pieces of `piece` bytes (0: all at once), as a connection would,
// applying every step as the contract says.
Decoded decode(const http1::BodyFraming& framing, const std::string& input, std::size_t piece = 0,
               bool eof = false) {
  http1::BodyDecoder d(framing);
  Decoded out;
  std::string buffered;
  std::size_t fed = 0;
  for (int guard = 0; guard < 1000000; ++guard) {
    const BodyStep step = d.next(
        std::string_view(buffered).substr(0, http1::BodyDecoder::kMaxLine + 2), buffered.size());
    if (step.action == BodyStep::Action::Data) {
      out.content += buffered.substr(0, step.n);
      buffered.erase(0, step.n);
      d.took(step.n);
    } else if (step.action == BodyStep::Action::Skip) {
      REQUIRE(step.n <= buffered.size());
      buffered.erase(0, step.n);
    } else if (step.action == BodyStep::Action::Done) {
      out.done = true;
      break;
    } else if (step.action == BodyStep::Action::Error) {
      out.error = std::string(step.reason);
      break;
    } else if (fed < input.size()) {
      const std::size_t n = piece == 0 ? input.size() - fed : std::min(piece, input.size() - fed);
      buffered += input.substr(fed, n);
      fed += n;
    } else {
      if (eof) out.done = d.complete_at_eof();
      break;
    }
  }
  out.rest = buffered + input.substr(fed);
  return out;
}

http1::BodyFraming chunked() {
  http1::BodyFraming f;
  f.kind = BodyKind::Chunked;
  return f;
}

}  // namespace

TEST_CASE("request framing: Content-Length, chunked, or none") {
  auto f = http1::request_body_framing(
      request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"));
  CHECK(f.ok());
  CHECK(f.kind == BodyKind::Length);
  CHECK(f.length == 5);
  f = http1::request_body_framing(
      request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"));
  CHECK(f.kind == BodyKind::None);
  f = http1::request_body_framing(request("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  CHECK(f.kind == BodyKind::None);
  f = http1::request_body_framing(
      request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"));
  CHECK(f.kind == BodyKind::Chunked);
}

TEST_CASE("request framing: transfer codings other than exactly chunked are refused") {
  const auto status = [](const std::string& te_lines, int minor = 1) {
    return http1::request_body_framing(request("POST / HTTP/1." + std::to_string(minor) +
                                               "\r\nHost: a\r\n" + te_lines + "\r\n"))
        .error_status;
  };
  CHECK(status("Transfer-Encoding: gzip, chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: chunked, chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: gzip\r\n") == 501);
  CHECK(status("Transfer-Encoding: xchunked\r\n") == 501);
  // RFC 9112 6.1: HTTP/1.0 has no transfer codings.
  CHECK(status("Transfer-Encoding: chunked\r\n", 0) == 400);
}

TEST_CASE("response framing follows RFC 9112 6.3") {
  const std::string cl = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n";
  CHECK(http1::response_body_framing(response(cl), "GET").kind == BodyKind::Length);
  CHECK(http1::response_body_framing(response(cl), "HEAD").kind == BodyKind::None);
  CHECK(http1::response_body_framing(response("HTTP/1.1 204 No Content\r\n\r\n"), "GET").kind ==
        BodyKind::None);
  CHECK(http1::response_body_framing(
            response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"), "GET")
            .kind == BodyKind::None);
  CHECK(http1::response_body_framing(response("HTTP/1.1 200 OK\r\n\r\n"), "GET").kind ==
        BodyKind::UntilClose);
  CHECK(http1::response_body_framing(
            response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET")
            .kind == BodyKind::Chunked);
  CHECK(http1::response_body_framing(
            response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), "GET")
            .error_status == 502);
}

TEST_CASE("chunked content is decoded the same whole, in pieces and byte by byte") {
  const std::string body =
      "5\r\nhello\r\n"
      "6;name=value;q=\"a \\\" b\" ; bare\r\n world\r\n"
      "00000001\r\n!\r\n"
      "0\r\nX-Trailer: 1\r\nOther: two\r\n\r\n"
      "GET /next HTTP/1.1\r\n";
  for (std::size_t piece : {0, 1, 2, 3, 7, 64}) {
    CAPTURE(piece);
    const Decoded d = decode(chunked(), body, piece);
    CHECK(d.error == "");
    CHECK(d.done);
    CHECK(d.content == "hello world!");
    CHECK(d.rest == "GET /next HTTP/1.1\r\n");  // the next request stays for the next head
  }
}

TEST_CASE("malformed chunked framing is an error, never content") {
  const char* bad[] = {
      "zz\r\nhello\r\n0\r\n\r\n",          // not hex
      "-5\r\nhello\r\n0\r\n\r\n",          // sign
      "0x5\r\nhello\r\n0\r\n\r\n",         // prefix
      "+5\r\nhello\r\n0\r\n\r\n",          //
      " 5\r\nhello\r\n0\r\n\r\n",          // leading space
      "\r\nhello\r\n0\r\n\r\n",            // empty size
      "5 x\r\nhello\r\n0\r\n\r\n",         // junk after the size
      "5;\r\nhello\r\n0\r\n\r\n",          // extension without a name
      "5;=v\r\nhello\r\n0\r\n\r\n",        //
      "5;a=\r\nhello\r\n0\r\n\r\n",        // extension without a value
      "5;a=\"open\r\nhello\r\n0\r\n\r\n",  // unterminated quoted-string
      "5\nhello\r\n0\r\n\r\n",             // bare LF
      "5\rhello\r\n0\r\n\r\n",             // bare CR
      "5\r\nhelloXY0\r\n\r\n",             // data not followed by CRLF
      "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
      "10000000000000000\r\n",  // 2^64: overflow
      "1000000000000000\r\n",   // 2^60: too large for any real body
  };
  for (const char* b : bad) {
    CAPTURE(b);
    for (std::size_t piece : {0, 1}) {
      const Decoded d = decode(chunked(), b, piece);
      CHECK(d.error != "");
      CHECK_FALSE(d.done);
    }
  }
}

TEST_CASE("a chunk size line longer than the limit is an error") {
  const std::string line = "5;" + std::string(http1::BodyDecoder::kMaxLine, 'a');
  CHECK(decode(chunked(), line).error == "chunk size line too long");
  CHECK(decode(chunked(), line + "\r\nhello\r\n0\r\n\r\n").error != "");
}

TEST_CASE("Content-Length content ends exactly after its length") {
  http1::BodyFraming f;
  f.kind = BodyKind::Length;
  f.length = 5;
  for (std::size_t piece : {0, 1, 4}) {
    const Decoded d = decode(f, "helloGET / HTTP/1.1\r\n", piece);
    CHECK(d.done);
    CHECK(d.content == "hello");
    CHECK(d.rest == "GET / HTTP/1.1\r\n");
  }
  const Decoded cut = decode(f, "hel", 0, /*eof=*/true);
  CHECK_FALSE(cut.done);  // EOF before the end: not a complete body
}

TEST_CASE("content until close ends only at EOF") {
  http1::BodyFraming f;
  f.kind = BodyKind::UntilClose;
  const Decoded d = decode(f, "all of it", 2, /*eof=*/true);
  CHECK(d.done);
  CHECK(d.content == "all of it");
  const Decoded chunked_cut = decode(chunked(), "5\r\nhel", 0, /*eof=*/true);
  CHECK_FALSE(chunked_cut.done);
}

TEST_CASE("chunk size lines: sizes and extensions") {
  uint64_t n = 0;
  CHECK(http1::parse_chunk_size_line("fF", n));
  CHECK(n == 255);
  CHECK(http1::parse_chunk_size_line("0", n));
  CHECK(n == 0);
  CHECK(http1::parse_chunk_size_line("a ; x = y ;z=\"q\\\"\"", n));
  CHECK(n == 10);
  CHECK(http1::parse_chunk_size_line("fffffffffffffff", n));  // 2^60 - 1
  CHECK_FALSE(http1::parse_chunk_size_line("", n));
  CHECK_FALSE(http1::parse_chunk_size_line("g", n));
  CHECK_FALSE(http1::parse_chunk_size_line("5;a b", n));
  CHECK_FALSE(http1::parse_chunk_size_line("5;a=\"\x01\"", n));
}

TEST_CASE("bytes_expected: what is certain to come, for reading large bodies in large pieces") {
  http1::BodyDecoder length(http1::BodyFraming{BodyKind::Length, 1000, 0, {}});
  CHECK(length.bytes_expected() == 1000);
  BodyStep step = length.next(std::string(400, 'x'), 400);
  REQUIRE(step.action == BodyStep::Action::Data);
  length.took(400);
  CHECK(length.bytes_expected() == 600);

  http1::BodyDecoder chunked(http1::BodyFraming{BodyKind::Chunked, 0, 0, {}});
  CHECK(chunked.bytes_expected() == 0);  // the size line is still to be read
  const std::string line = "100\r\n";
  step = chunked.next(line, line.size());
  REQUIRE(step.action == BodyStep::Action::Skip);
  CHECK(chunked.bytes_expected() == 0x100 + 2);  // the chunk and its CRLF

  http1::BodyDecoder until_close(http1::BodyFraming{BodyKind::UntilClose, 0, 0, {}});
  CHECK(until_close.bytes_expected() == UINT64_MAX);  // the close ends any wait
  CHECK(http1::BodyDecoder().bytes_expected() == 0);
}
