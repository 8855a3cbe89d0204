#include "proxy/codec/http1_parser.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::literals;
using wsgate::http1::Header;
using wsgate::http1::header_has_token;
using wsgate::http1::iequals;
using wsgate::http1::Limits;
using wsgate::http1::parse_request_head;
using wsgate::http1::parse_response_head;
using wsgate::http1::ParseResult;
using wsgate::http1::ParseState;
using wsgate::http1::RequestHead;
using wsgate::http1::ResponseHead;

namespace {

constexpr std::size_t kKiB = 1024;

// RFC 6455 1.2: the client's opening handshake.
constexpr std::string_view kRfcRequest =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

constexpr std::string_view kRfcResponse =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: chat\r\n"
    "\r\n";

// True when `view` lies inside `raw` (views must never point into the caller's input).
bool points_into(std::string_view view, const std::string& raw) {
  const char* b = raw.data();
  return view.data() >= b && view.data() + view.size() <= b + raw.size();
}

void check_views_in_raw(const RequestHead& h) {
  CHECK(points_into(h.method, h.raw));
  CHECK(points_into(h.target, h.raw));
  for (const Header& f : h.headers) {
    CHECK(points_into(f.name, h.raw));
    CHECK(points_into(f.value, h.raw));
  }
}

void check_views_in_raw(const ResponseHead& h) {
  CHECK(points_into(h.reason, h.raw));
  for (const Header& f : h.headers) {
    CHECK(points_into(f.name, h.raw));
    CHECK(points_into(f.value, h.raw));
  }
}

// A minimal valid request with extra header lines (each without CRLF).
std::string request_with(const std::vector<std::string>& lines,
                         std::string_view request_line = "GET / HTTP/1.1") {
  std::string s(request_line);
  s += "\r\nHost: example.com\r\n";
  for (const std::string& l : lines) s += l + "\r\n";
  s += "\r\n";
  return s;
}

struct BadCase {
  const char* what;
  std::string input;
  int status;
  std::string_view reason_contains;
};

void check_request_error(const BadCase& c, const Limits& limits = Limits{}) {
  CAPTURE(c.what);
  CAPTURE(c.input);
  RequestHead head;
  const ParseResult r = parse_request_head(c.input, limits, head);
  REQUIRE(r.state == ParseState::Error);
  CHECK(r.error_status == c.status);
  CHECK(r.error_reason.find(c.reason_contains) != std::string::npos);
  CHECK(r.error_reason.find_first_of("\r\n") == std::string::npos);  // one line
  CHECK(r.head_length == 0);
}

void check_response_error(const BadCase& c, const Limits& limits = Limits{}) {
  CAPTURE(c.what);
  CAPTURE(c.input);
  ResponseHead head;
  const ParseResult r = parse_response_head(c.input, limits, head);
  REQUIRE(r.state == ParseState::Error);
  CHECK(r.error_status == c.status);
  CHECK(r.error_reason.find(c.reason_contains) != std::string::npos);
  CHECK(r.error_reason.find_first_of("\r\n") == std::string::npos);
}

}  // namespace

// ---------------------------------------------------------------- valid requests

TEST_CASE("request: RFC 6455 opening handshake parses completely") {
  RequestHead h;
  const ParseResult r = parse_request_head(kRfcRequest, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(r.head_length == kRfcRequest.size());
  CHECK(r.error_status == 0);
  CHECK(r.error_reason.empty());
  CHECK(h.raw == kRfcRequest);
  CHECK(h.method == "GET");
  CHECK(h.target == "/chat");
  CHECK(h.version_minor == 1);
  REQUIRE(h.headers.size() == 7);
  CHECK(h.headers[0].name == "Host");
  CHECK(h.headers[0].value == "server.example.com");
  CHECK(h.headers[3].name == "Sec-WebSocket-Key");
  CHECK(h.headers[3].value == "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK(h.headers[5].value == "chat, superchat");
  CHECK(h.headers[6].name == "Sec-WebSocket-Version");
  CHECK(h.headers[6].value == "13");
  check_views_in_raw(h);
}

TEST_CASE("request: find and count are case-insensitive") {
  RequestHead h;
  const std::string in = request_with({"X-Dup: one", "x-dup: two", "X-DUP: three"});
  REQUIRE(parse_request_head(in, Limits{}, h).state == ParseState::Complete);
  REQUIRE(h.find("host") != nullptr);
  CHECK(h.find("HOST")->value == "example.com");
  CHECK(h.count("Host") == 1);
  CHECK(h.count("x-dup") == 3);
  CHECK(h.find("X-Dup")->value == "one");  // the first one
  CHECK(h.find("missing") == nullptr);
  CHECK(h.count("missing") == 0);
  CHECK(h.find("") == nullptr);
}

TEST_CASE("request: many headers, in order") {
  std::vector<std::string> lines;
  lines.reserve(99);
  for (int i = 0; i < 99; ++i)
    lines.push_back("X-H" + std::to_string(i) + ": v" + std::to_string(i));
  const std::string in = request_with(lines);  // 99 + Host = 100 = default limit
  RequestHead h;
  const ParseResult r = parse_request_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  REQUIRE(h.headers.size() == 100);
  for (int i = 0; i < 99; ++i) {
    const Header& f = h.headers[static_cast<std::size_t>(i) + 1];
    CHECK(f.name == "X-H" + std::to_string(i));
    CHECK(f.value == "v" + std::to_string(i));
  }
  check_views_in_raw(h);
}

TEST_CASE("request: OWS around field values is trimmed, inner whitespace kept") {
  RequestHead h;
  const std::string in = request_with({
      "A:value",
      "B: value",
      "C: \t  spaced \t value \t ",
      "D:",
      "E:    ",
      "F:\tx",
  });
  REQUIRE(parse_request_head(in, Limits{}, h).state == ParseState::Complete);
  CHECK(h.find("A")->value == "value");
  CHECK(h.find("B")->value == "value");
  CHECK(h.find("C")->value == "spaced \t value");
  CHECK(h.find("D")->value.empty());
  CHECK(h.find("E")->value.empty());
  CHECK(h.find("F")->value == "x");
  check_views_in_raw(h);
}

TEST_CASE("request: every byte of a field value is checked, wherever it sits") {
  // Values are checked eight bytes at a time: every position in and around a word,
  // with every control character (and DEL) refused, HTAB and obs-text allowed.
  RequestHead h;
  for (std::size_t length = 1; length <= 24; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int c = 0; c < 256; ++c) {
        if (c == '\r' || c == '\n') continue;  // line ends: the scan's business
        std::string value(length, 'v');
        value[at] = static_cast<char>(c);
        // Leading or trailing blanks are OWS, not part of the value: keep them inside.
        value = "<" + value + ">";
        const bool allowed = c == '\t' || (c >= 0x20 && c != 0x7f);
        const ParseResult r = parse_request_head(request_with({"X-Value: " + value}), Limits{}, h);
        CAPTURE(length);
        CAPTURE(at);
        CAPTURE(c);
        CHECK((r.state == ParseState::Complete) == allowed);
        if (allowed) CHECK(h.find("x-value")->value == value);
      }
    }
  }
}

TEST_CASE("request: a CR that ends no line is refused wherever it sits") {
  // The head is scanned sixteen bytes at a time: a lone CR at every offset in and
  // around a block, in a value, in a name and in the request line.
  for (std::size_t pad = 0; pad < 40; ++pad) {
    CAPTURE(pad);
    RequestHead h;
    const std::string filler(pad, 'v');
    std::string value = "<" + filler + "\r>";
    ParseResult r = parse_request_head(request_with({"X-Value: " + value}), Limits{}, h);
    REQUIRE(r.state == ParseState::Error);
    CHECK(r.error_status == 400);
    CHECK(r.error_reason == "invalid character in header field value");

    r = parse_request_head(request_with({"X-" + filler + "\r: v"}), Limits{}, h);
    REQUIRE(r.state == ParseState::Error);
    CHECK(r.error_status == 400);

    r = parse_request_head(request_with({}, "GET /" + filler + "\r HTTP/1.1"), Limits{}, h);
    REQUIRE(r.state == ParseState::Error);
    CHECK(r.error_reason == "invalid request-target");
  }
}

TEST_CASE("request: what follows the head does not change its parse") {
  // The head ends at every offset of a block; the bytes after it (a pipelined body or
  // frame) hold control bytes, lone CRs and LFs, which must not matter.
  for (std::size_t pad = 0; pad < 40; ++pad) {
    CAPTURE(pad);
    const std::string head = request_with({"X-Pad: " + std::string(pad, 'p')});
    for (const std::string& after : {"\r"s, "\n"s, "\0\x01\x7f"s, "\r\r\n\n\x02"s}) {
      RequestHead h;
      const ParseResult r = parse_request_head(head + after, Limits{}, h);
      REQUIRE(r.state == ParseState::Complete);
      CHECK(r.head_length == head.size());
      CHECK(h.find("x-pad")->value == std::string(pad, 'p'));
    }
  }
}

TEST_CASE("request: tokens, targets and field values that are allowed") {
  RequestHead h;
  SUBCASE("all tchar in the method and in a field name") {
    const std::string in =
        request_with({"!#$%&'*+-.^_`|~09azAZ: ok"}, "M!#$%&'*+-.^_`|~09 / HTTP/1.1");
    REQUIRE(parse_request_head(in, Limits{}, h).state == ParseState::Complete);
    CHECK(h.method == "M!#$%&'*+-.^_`|~09");
    CHECK(h.find("!#$%&'*+-.^_`|~09azAZ")->value == "ok");
  }
  SUBCASE("absolute-form, authority-form, asterisk-form targets") {
    REQUIRE(
        parse_request_head(request_with({}, "GET http://a.example/x?y=1#z HTTP/1.1"), Limits{}, h)
            .state == ParseState::Complete);
    CHECK(h.target == "http://a.example/x?y=1#z");
    REQUIRE(parse_request_head(request_with({}, "CONNECT example.com:443 HTTP/1.1"), Limits{}, h)
                .state == ParseState::Complete);
    CHECK(h.method == "CONNECT");
    CHECK(h.target == "example.com:443");
    REQUIRE(parse_request_head(request_with({}, "OPTIONS * HTTP/1.1"), Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.target == "*");
  }
  SUBCASE("obs-text, HTAB and punctuation in values") {
    const std::string in = request_with({"X-Bytes: caf\xc3\xa9\t\x80\xff \"q\" ;=,"});
    REQUIRE(parse_request_head(in, Limits{}, h).state == ParseState::Complete);
    CHECK(h.find("x-bytes")->value == "caf\xc3\xa9\t\x80\xff \"q\" ;=,");
  }
  SUBCASE("colon inside the value") {
    REQUIRE(parse_request_head(request_with({"X-Url: http://a:b@c:80/"}), Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.find("X-Url")->value == "http://a:b@c:80/");
  }
  SUBCASE("valid Content-Length, alone") {
    REQUIRE(parse_request_head(request_with({"Content-Length:  42 "}), Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.find("content-length")->value == "42");
    REQUIRE(parse_request_head(request_with({"Content-Length: 0"}), Limits{}, h).state ==
            ParseState::Complete);
  }
  SUBCASE("Transfer-Encoding alone") {
    REQUIRE(parse_request_head(request_with({"Transfer-Encoding: chunked"}), Limits{}, h).state ==
            ParseState::Complete);
  }
}

TEST_CASE("request: HTTP/1.0 is accepted with version_minor 0") {
  RequestHead h;
  const std::string_view in = "GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n";
  const ParseResult r = parse_request_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(h.version_minor == 0);
  CHECK(h.target == "/old");
  CHECK(r.head_length == in.size());
}

TEST_CASE("request: a head with no header fields at all") {
  RequestHead h;
  const std::string_view in = "GET / HTTP/1.1\r\n\r\n";
  const ParseResult r = parse_request_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(r.head_length == in.size());
  CHECK(h.headers.empty());
}

TEST_CASE("request: empty lines before the request line are ignored (RFC 9112 2.2)") {
  RequestHead h;
  const std::string in = "\r\n\r\n" + std::string(kRfcRequest);
  const ParseResult r = parse_request_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(r.head_length == in.size());  // the empty lines are consumed too
  CHECK(h.method == "GET");
  CHECK(h.target == "/chat");
  CHECK(h.headers.size() == 7);

  // Only empty lines so far: wait for the request line.
  CHECK(parse_request_head("\r\n"sv, Limits{}, h).state == ParseState::Incomplete);
  CHECK(parse_request_head("\r\n\r\n"sv, Limits{}, h).state == ParseState::Incomplete);
  // ... but not forever.
  Limits small;
  small.max_head_bytes = 64;
  std::string crlfs;
  for (int i = 0; i < 40; ++i) crlfs += "\r\n";
  const ParseResult big = parse_request_head(crlfs, small, h);
  CHECK(big.state == ParseState::Error);
  CHECK(big.error_status == 431);
}

// ---------------------------------------------------------------- incremental feeding

TEST_CASE("request: every proper prefix is Incomplete, the whole head is Complete") {
  const std::string in = "\r\n" + std::string(kRfcRequest);
  for (std::size_t n = 0; n < in.size(); ++n) {
    CAPTURE(n);
    RequestHead h;
    const ParseResult r = parse_request_head(std::string_view(in).substr(0, n), Limits{}, h);
    CHECK(r.state == ParseState::Incomplete);
    CHECK(r.head_length == 0);
    CHECK(r.error_status == 0);
  }
  RequestHead h;
  const ParseResult r = parse_request_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(r.head_length == in.size());
}

TEST_CASE("request: bytes after the head are not part of it") {
  // A client may pipeline its first WebSocket frame right behind the handshake.
  const std::string frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s;
  const std::string in = std::string(kRfcRequest) + frame;
  RequestHead h;
  const ParseResult r = parse_request_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(r.head_length == kRfcRequest.size());
  CHECK(h.raw == kRfcRequest);
  CHECK(in.substr(r.head_length) == frame);
  CHECK(h.find("Sec-WebSocket-Version")->value == "13");
  check_views_in_raw(h);

  // Even bytes that look like another head (pipelining) or a bare LF.
  const std::string two = std::string(kRfcRequest) + "GET /2 HTTP/1.1\n";
  REQUIRE(parse_request_head(two, Limits{}, h).state == ParseState::Complete);
  CHECK(h.target == "/chat");
}

TEST_CASE("request: views stay valid after the input buffer is gone") {
  RequestHead h;
  {
    std::string input(kRfcRequest);
    input += "trailing";
    REQUIRE(parse_request_head(input, Limits{}, h).state == ParseState::Complete);
    input.assign(input.size(), 'X');  // scribble over it, then free it
  }
  CHECK(h.method == "GET");
  CHECK(h.target == "/chat");
  CHECK(h.find("Host")->value == "server.example.com");
  check_views_in_raw(h);
}

TEST_CASE("request: reusing the output object replaces everything") {
  RequestHead h;
  REQUIRE(parse_request_head(kRfcRequest, Limits{}, h).state == ParseState::Complete);
  REQUIRE(parse_request_head("POST /x HTTP/1.0\r\nA: b\r\n\r\n"sv, Limits{}, h).state ==
          ParseState::Complete);
  CHECK(h.method == "POST");
  CHECK(h.target == "/x");
  CHECK(h.version_minor == 0);
  REQUIRE(h.headers.size() == 1);
  CHECK(h.headers[0].name == "A");
  CHECK(h.headers[0].value == "b");
  CHECK(h.raw == "POST /x HTTP/1.0\r\nA: b\r\n\r\n");
  check_views_in_raw(h);
}

TEST_CASE("request: copies and moves keep views pointing into their own raw") {
  RequestHead original;
  REQUIRE(parse_request_head(kRfcRequest, Limits{}, original).state == ParseState::Complete);

  SUBCASE("copy construction outlives the original") {
    auto* heap = new RequestHead(original);
    RequestHead copy(*heap);
    delete heap;
    CHECK(copy.method == "GET");
    CHECK(copy.find("Host")->value == "server.example.com");
    check_views_in_raw(copy);
  }
  SUBCASE("copy assignment") {
    RequestHead copy;
    REQUIRE(parse_request_head("GET /other HTTP/1.1\r\n\r\n"sv, Limits{}, copy).state ==
            ParseState::Complete);
    copy = original;
    original.raw.assign(original.raw.size(), 'X');
    CHECK(copy.target == "/chat");
    CHECK(copy.headers.size() == 7);
    check_views_in_raw(copy);
  }
  SUBCASE("self assignment") {
    RequestHead& alias = original;
    original = alias;
    CHECK(original.target == "/chat");
    original = std::move(alias);
    CHECK(original.target == "/chat");
    check_views_in_raw(original);
  }
  SUBCASE("move construction and assignment") {
    RequestHead moved(std::move(original));
    CHECK(moved.target == "/chat");
    check_views_in_raw(moved);
    RequestHead assigned;
    assigned = std::move(moved);
    CHECK(assigned.find("Upgrade")->value == "websocket");
    check_views_in_raw(assigned);
    std::vector<RequestHead> many;  // no reserve: reallocations move the heads
    for (int i = 0; i < 20; ++i)
      many.push_back(assigned);  // NOLINT(performance-inefficient-vector-operation)
    for (const RequestHead& m : many) check_views_in_raw(m);
  }
  SUBCASE("views into a short raw (inline small-string buffer) survive a move") {
    RequestHead small;
    small.raw = "GET /s";  // short enough for the small-string buffer
    small.method = std::string_view(small.raw).substr(0, 3);
    small.target = std::string_view(small.raw).substr(4);
    small.headers.push_back(Header{small.target, small.method});
    RequestHead moved(std::move(small));
    small.raw.assign("XXXXXX");  // NOLINT(bugprone-use-after-move): reuse must not touch `moved`
    CHECK(moved.method == "GET");
    CHECK(moved.target == "/s");
    CHECK(moved.headers[0].name == "/s");
    check_views_in_raw(moved);
    RequestHead assigned;
    assigned = std::move(moved);
    moved.raw.assign("YYYYYY");  // NOLINT(bugprone-use-after-move): as above
    CHECK(assigned.target == "/s");
    check_views_in_raw(assigned);
  }
  SUBCASE("assigning an empty head releases the old head's bytes") {
    // std::string's own move assignment from a short string keeps the destination's
    // heap buffer: a connection that reset its parsed head kept it (issue 13).
    REQUIRE(original.raw.capacity() > std::string().capacity());
    original = RequestHead();
    CHECK(original.raw.empty());
    CHECK(original.raw.capacity() == std::string().capacity());
    CHECK(original.headers.empty());
  }
  SUBCASE("views set by hand (not into raw) are copied as they are") {
    RequestHead manual;
    manual.method = "GET";
    manual.target = "/by-hand";
    manual.headers.push_back(Header{"Host", "h"});
    const RequestHead copy = manual;
    CHECK(copy.method == "GET");
    CHECK(copy.target == "/by-hand");
    CHECK(copy.find("Host")->value == "h");
  }
}

// ---------------------------------------------------------------- malformed requests

TEST_CASE("request: malformed request lines -> 400") {
  const std::vector<BadCase> cases = {
      {"bad method char @", request_with({}, "G@T / HTTP/1.1"), 400, "invalid method"},
      {"bad method char (", request_with({}, "GE(T / HTTP/1.1"), 400, "invalid method"},
      {"bad method char :", request_with({}, "GE:T / HTTP/1.1"), 400, "invalid method"},
      {"bad method char quote", request_with({}, "G\"ET / HTTP/1.1"), 400, "invalid method"},
      {"bad method high byte", request_with({}, "G\xc9T / HTTP/1.1"), 400, "invalid method"},
      {"bad method CTL", request_with({}, "G\x01T / HTTP/1.1"), 400, "invalid method"},
      {"empty method", request_with({}, " / HTTP/1.1"), 400, "invalid method"},
      {"method glued to target", request_with({}, "GET/ HTTP/1.1"), 400, "invalid method"},
      {"tab instead of SP", request_with({}, "GET\t/\tHTTP/1.1"), 400, "malformed request line"},
      {"missing SP before version", request_with({}, "GET /HTTP/1.1"), 400,
       "malformed request line"},
      {"method only", request_with({}, "GET"), 400, "malformed request line"},
      {"two SP before target", request_with({}, "GET  / HTTP/1.1"), 400, "invalid request-target"},
      {"CTL in target", request_with({}, "GET /a\x01z HTTP/1.1"), 400, "invalid request-target"},
      {"DEL in target", request_with({}, "GET /a\x7fz HTTP/1.1"), 400, "invalid request-target"},
      {"high byte in target", request_with({}, "GET /caf\xc3\xa9 HTTP/1.1"), 400,
       "invalid request-target"},
      {"stray CR in target", request_with({}, "GET /\r HTTP/1.1"), 400, "invalid request-target"},
      {"lowercase http", request_with({}, "GET / http/1.1"), 400, "invalid HTTP version"},
      {"HTTPS name", request_with({}, "GET / HTTPS/1.1"), 400, "invalid HTTP version"},
      {"no minor", request_with({}, "GET / HTTP/1"), 400, "invalid HTTP version"},
      {"no dot", request_with({}, "GET / HTTP/11"), 400, "invalid HTTP version"},
      {"comma", request_with({}, "GET / HTTP/1,1"), 400, "invalid HTTP version"},
      {"two-digit minor", request_with({}, "GET / HTTP/1.10"), 400, "invalid HTTP version"},
      {"two-digit major", request_with({}, "GET / HTTP/10.1"), 400, "invalid HTTP version"},
      {"letter minor", request_with({}, "GET / HTTP/1.x"), 400, "invalid HTTP version"},
      {"letter major", request_with({}, "GET / HTTP/a.1"), 400, "invalid HTTP version"},
      {"trailing SP", request_with({}, "GET / HTTP/1.1 "), 400, "invalid HTTP version"},
      {"extra token", request_with({}, "GET / HTTP/1.1 x"), 400, "invalid HTTP version"},
      {"empty version", request_with({}, "GET / "), 400, "invalid HTTP version"},
      {"HTTP/0.9 style line", request_with({}, "GET /"), 400, "malformed request line"},
  };
  for (const BadCase& c : cases) check_request_error(c);
}

TEST_CASE("request: unsupported HTTP versions -> 505") {
  for (std::string_view v :
       {"HTTP/2.0", "HTTP/1.2", "HTTP/1.9", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"}) {
    check_request_error({"version", request_with({}, "GET / " + std::string(v)), 505,
                         "HTTP version not supported"});
  }
}

TEST_CASE("request: malformed header fields -> 400") {
  const std::vector<BadCase> cases = {
      {"space before colon", request_with({"Upgrade : websocket"}), 400,
       "whitespace before colon in header field (RFC 9112 5.1)"},
      {"tab before colon", request_with({"Upgrade\t: websocket"}), 400, "whitespace before colon"},
      {"obs-fold with SP", request_with({"X-A: one", " two"}), 400, "obsolete line folding"},
      {"obs-fold with HTAB", request_with({"X-A: one", "\ttwo"}), 400, "obsolete line folding"},
      {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400,
       "obsolete line folding"},
      {"empty header name", request_with({": value"}), 400, "empty header field name"},
      {"no colon", request_with({"Host example.com"}), 400, "header field without colon"},
      {"space inside name", request_with({"X A: b"}), 400, "invalid header field name"},
      {"@ in name", request_with({"X@A: b"}), 400, "invalid header field name"},
      {"( in name", request_with({"X(A): b"}), 400, "invalid header field name"},
      {"high byte in name", request_with({"X\xc3\xa9: b"}), 400, "invalid header field name"},
      {"CTL in name", request_with({"X\x01: b"}), 400, "invalid header field name"},
      {"CR in name", request_with({"X\rY: b"}), 400, "invalid header field name"},
      {"SOH in value", request_with({"X-A: a\x01z"}), 400,
       "invalid character in header field value"},
      {"ESC in value", request_with({"X-A: \x1b[0m"}), 400, "invalid character"},
      {"DEL in value", request_with({"X-A: a\x7f"}), 400, "invalid character"},
      {"NUL in value", request_with({"X-A: a\0z"s}), 400, "invalid character"},
      {"stray CR in value", request_with({"X-A: a\rz"}), 400, "invalid character"},
      {"CR at end of value", request_with({"X-A: a\r"}), 400, "invalid character"},
  };
  for (const BadCase& c : cases) check_request_error(c);
}

TEST_CASE("request: bare LF -> 400, even before the head is complete") {
  const std::vector<BadCase> cases = {
      {"after request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF"},
      {"after a field", "GET / HTTP/1.1\r\nHost: x\n\r\n", 400, "bare LF"},
      {"final empty line", "GET / HTTP/1.1\r\nHost: x\r\n\n", 400, "bare LF"},
      {"LF-only head", "GET / HTTP/1.1\nHost: x\n\n", 400, "bare LF"},
      {"first byte", "\nGET / HTTP/1.1\r\n\r\n", 400, "bare LF"},
      {"after ignored empty line", "\r\n\nGET / HTTP/1.1\r\n\r\n", 400, "bare LF"},
      {"incomplete, after request line", "GET / HTTP/1.1\n", 400, "bare LF"},
      {"incomplete, inside fields", "GET / HTTP/1.1\r\nHost: x\nUser-Agent: y", 400, "bare LF"},
      {"LF inside a value", "GET / HTTP/1.1\r\nX-A: a\nb\r\n\r\n", 400, "bare LF"},
  };
  for (const BadCase& c : cases) check_request_error(c);
}

TEST_CASE("request: message framing that invites smuggling -> 400 (RFC 9112 6.3)") {
  const std::vector<BadCase> cases = {
      {"CL then TE", request_with({"Content-Length: 5", "Transfer-Encoding: chunked"}), 400,
       "both Content-Length and Transfer-Encoding"},
      {"TE then CL", request_with({"Transfer-Encoding: chunked", "Content-Length: 5"}), 400,
       "both Content-Length and Transfer-Encoding"},
      {"CL + TE, other case", request_with({"content-length: 0", "TRANSFER-ENCODING: identity"}),
       400, "both Content-Length and Transfer-Encoding"},
      {"duplicate CL, same value", request_with({"Content-Length: 5", "Content-Length: 5"}), 400,
       "multiple Content-Length"},
      {"duplicate CL, other value", request_with({"Content-Length: 5", "content-length: 6"}), 400,
       "multiple Content-Length"},
      {"CL list", request_with({"Content-Length: 5, 5"}), 400, "invalid Content-Length"},
      {"CL letters", request_with({"Content-Length: abc"}), 400, "invalid Content-Length"},
      {"CL digits then letter", request_with({"Content-Length: 12a"}), 400,
       "invalid Content-Length"},
      {"CL negative", request_with({"Content-Length: -1"}), 400, "invalid Content-Length"},
      {"CL plus sign", request_with({"Content-Length: +1"}), 400, "invalid Content-Length"},
      {"CL hex", request_with({"Content-Length: 0x10"}), 400, "invalid Content-Length"},
      {"CL inner space", request_with({"Content-Length: 1 2"}), 400, "invalid Content-Length"},
      {"CL empty", request_with({"Content-Length:"}), 400, "invalid Content-Length"},
      {"CL too long", request_with({"Content-Length: 1234567890123456789"}), 400,
       "invalid Content-Length"},
  };
  for (const BadCase& c : cases) check_request_error(c);
}

// ---------------------------------------------------------------- limits

TEST_CASE("request: too many header fields -> 431") {
  Limits limits;
  limits.max_headers = 3;
  RequestHead h;
  // Host + 2 = 3 fields: at the limit.
  CHECK(parse_request_head(request_with({"A: 1", "B: 2"}), limits, h).state ==
        ParseState::Complete);
  check_request_error(
      {"4 > 3", request_with({"A: 1", "B: 2", "C: 3"}), 431, "too many header fields"}, limits);

  std::vector<std::string> lines;
  lines.reserve(100);
  for (int i = 0; i < 100; ++i) lines.push_back("X-" + std::to_string(i) + ": v");
  check_request_error({"101 > default 100", request_with(lines), 431, "too many header fields"});

  limits.max_headers = 0;
  CHECK(parse_request_head("GET / HTTP/1.1\r\n\r\n"sv, limits, h).state == ParseState::Complete);
  check_request_error({"1 > 0", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 431, "too many"}, limits);
}

TEST_CASE("request: head larger than max_head_bytes -> 431") {
  const std::string in(kRfcRequest);
  Limits limits;
  RequestHead h;

  SUBCASE("complete head: the limit counts the final CRLFCRLF") {
    limits.max_head_bytes = in.size();
    CHECK(parse_request_head(in, limits, h).state == ParseState::Complete);
    // Extra bytes after the head do not count.
    CHECK(parse_request_head(in + "more bytes", limits, h).state == ParseState::Complete);
    limits.max_head_bytes = in.size() - 1;
    check_request_error({"one byte over", in, 431, "too large"}, limits);
    limits.max_head_bytes = 10;
    check_request_error({"far over", in, 431, "too large"}, limits);
  }
  SUBCASE("incomplete head already at the limit") {
    const std::string partial = in.substr(0, 60);
    limits.max_head_bytes = 61;
    CHECK(parse_request_head(partial, limits, h).state == ParseState::Incomplete);
    limits.max_head_bytes = 60;
    check_request_error({"at the limit without CRLFCRLF", partial, 431, "too large"}, limits);
    limits.max_head_bytes = 20;
    check_request_error({"over the limit without CRLFCRLF", partial, 431, "too large"}, limits);
  }
  SUBCASE("default limit: a 20 KiB header value") {
    const std::string big = request_with({"X-Big: " + std::string(20 * kKiB, 'a')});
    check_request_error({"complete", big, 431, "too large"});
    check_request_error({"incomplete", big.substr(0, 17 * kKiB), 431, "too large"});
    CHECK(parse_request_head(big.substr(0, 16 * kKiB - 1), Limits{}, h).state ==
          ParseState::Incomplete);
  }
  SUBCASE("a head of exactly the default limit is fine") {
    std::string line = "X-Big: ";
    const std::string base = request_with({});
    line += std::string(16 * kKiB - base.size() - line.size() - 2, 'a');
    const std::string exact = request_with({line});
    REQUIRE(exact.size() == 16 * kKiB);
    const ParseResult r = parse_request_head(exact, Limits{}, h);
    REQUIRE(r.state == ParseState::Complete);
    CHECK(r.head_length == exact.size());
  }
}

// ---------------------------------------------------------------- responses

TEST_CASE("response: RFC 6455 101 Switching Protocols") {
  ResponseHead h;
  const std::string in = std::string(kRfcResponse) + "\x81\x05hello";
  const ParseResult r = parse_response_head(in, Limits{}, h);
  REQUIRE(r.state == ParseState::Complete);
  CHECK(r.head_length == kRfcResponse.size());
  CHECK(h.raw == kRfcResponse);
  CHECK(h.version_minor == 1);
  CHECK(h.status == 101);
  CHECK(h.reason == "Switching Protocols");
  REQUIRE(h.headers.size() == 4);
  CHECK(h.find("sec-websocket-accept")->value == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(h.count("Upgrade") == 1);
  CHECK(h.find("Sec-WebSocket-Protocol")->value == "chat");
  check_views_in_raw(h);
}

TEST_CASE("response: every proper prefix is Incomplete") {
  for (std::size_t n = 0; n < kRfcResponse.size(); ++n) {
    CAPTURE(n);
    ResponseHead h;
    CHECK(parse_response_head(kRfcResponse.substr(0, n), Limits{}, h).state ==
          ParseState::Incomplete);
  }
}

TEST_CASE("response: other statuses and reason phrases") {
  ResponseHead h;
  SUBCASE("404 with a body length") {
    const std::string_view in = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
    const ParseResult r = parse_response_head(in, Limits{}, h);
    REQUIRE(r.state == ParseState::Complete);
    CHECK(h.status == 404);
    CHECK(h.reason == "Not Found");
    CHECK(h.find("Content-Length")->value == "9");
    CHECK(in.substr(r.head_length) == "not found");
  }
  SUBCASE("HTTP/1.0 200") {
    REQUIRE(parse_response_head("HTTP/1.0 200 OK\r\n\r\n"sv, Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.version_minor == 0);
    CHECK(h.status == 200);
  }
  SUBCASE("bounds of the status range") {
    REQUIRE(parse_response_head("HTTP/1.1 100 Continue\r\n\r\n"sv, Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.status == 100);
    REQUIRE(parse_response_head("HTTP/1.1 599 X\r\n\r\n"sv, Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.status == 599);
  }
  SUBCASE("empty reason, with and without the SP") {
    REQUIRE(parse_response_head("HTTP/1.1 204 \r\n\r\n"sv, Limits{}, h).state ==
            ParseState::Complete);
    CHECK(h.status == 204);
    CHECK(h.reason.empty());
    REQUIRE(
        parse_response_head("HTTP/1.1 101\r\nUpgrade: websocket\r\n\r\n"sv, Limits{}, h).state ==
        ParseState::Complete);
    CHECK(h.status == 101);
    CHECK(h.reason.empty());
    CHECK(h.find("Upgrade")->value == "websocket");
  }
  SUBCASE("reason with spaces, HTAB, obs-text") {
    REQUIRE(parse_response_head("HTTP/1.1 502 Bad  Gateway\t\xe2\x9c\x97 \r\n\r\n"sv, Limits{}, h)
                .state == ParseState::Complete);
    CHECK(h.reason == "Bad  Gateway\t\xe2\x9c\x97 ");
  }
}

TEST_CASE("response: copies and moves keep views pointing into their own raw") {
  ResponseHead original;
  REQUIRE(parse_response_head(kRfcResponse, Limits{}, original).state == ParseState::Complete);
  ResponseHead copy = original;
  ResponseHead moved = std::move(original);
  original.raw.assign(40, 'X');  // NOLINT(bugprone-use-after-move): must not touch `moved`
  CHECK(copy.reason == "Switching Protocols");
  CHECK(moved.reason == "Switching Protocols");
  CHECK(moved.find("Upgrade")->value == "websocket");
  check_views_in_raw(copy);
  check_views_in_raw(moved);
  ResponseHead assigned;
  assigned = copy;
  copy = ResponseHead{};
  CHECK(copy.raw.capacity() == std::string().capacity());  // the old bytes are released
  CHECK(assigned.status == 101);
  check_views_in_raw(assigned);
}

TEST_CASE("response: malformed status lines") {
  const std::vector<BadCase> cases = {
      {"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 400, "invalid status code"},
      {"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 400, "invalid status code"},
      {"letters", "HTTP/1.1 abc OK\r\n\r\n", 400, "invalid status code"},
      {"below 100", "HTTP/1.1 099 Low\r\n\r\n", 400, "invalid status code"},
      {"above 599", "HTTP/1.1 600 High\r\n\r\n", 400, "invalid status code"},
      {"negative", "HTTP/1.1 -20 X\r\n\r\n", 400, "invalid status code"},
      {"two SP", "HTTP/1.1  200 OK\r\n\r\n", 400, "invalid status code"},
      {"tab after code", "HTTP/1.1 200\tOK\r\n\r\n", 400, "invalid status code"},
      {"no SP after version", "HTTP/1.1200 OK\r\n\r\n", 400, "malformed status line"},
      {"version only", "HTTP/1.1\r\n\r\n", 400, "malformed status line"},
      {"version and SP", "HTTP/1.1 \r\n\r\n", 400, "malformed status line"},
      {"empty status line", "\r\n\r\n", 400, "malformed status line"},
      {"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", 400, "malformed status line"},
      {"lowercase http", "http/1.1 200 OK\r\n\r\n", 400, "invalid HTTP version"},
      {"bad version", "HTTP/1.a 200 OK\r\n\r\n", 400, "invalid HTTP version"},
      {"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 400, "invalid reason phrase"},
      {"CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n", 400, "invalid reason phrase"},
      {"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", 505, "HTTP version not supported"},
      {"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", 505, "HTTP version not supported"},
  };
  for (const BadCase& c : cases) check_response_error(c);
}

TEST_CASE("response: header rules and limits are the same as for requests") {
  const std::vector<BadCase> cases = {
      {"space before colon", "HTTP/1.1 101 X\r\nUpgrade : websocket\r\n\r\n", 400,
       "whitespace before colon"},
      {"obs-fold", "HTTP/1.1 101 X\r\nA: b\r\n c\r\n\r\n", 400, "obsolete line folding"},
      {"bare LF", "HTTP/1.1 101 X\nA: b\r\n\r\n", 400, "bare LF"},
      {"CTL in value", "HTTP/1.1 101 X\r\nA: \x02\r\n\r\n", 400, "invalid character"},
      {"empty name", "HTTP/1.1 101 X\r\n: b\r\n\r\n", 400, "empty header field name"},
      {"CL + TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "both Content-Length and Transfer-Encoding"},
      {"duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400,
       "multiple Content-Length"},
      {"non-numeric CL", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 400,
       "invalid Content-Length"},
  };
  for (const BadCase& c : cases) check_response_error(c);

  Limits limits;
  limits.max_headers = 2;
  check_response_error(
      {"too many fields", std::string(kRfcResponse), 431, "too many header fields"}, limits);
  limits = Limits{};
  limits.max_head_bytes = 32;
  check_response_error({"too large", std::string(kRfcResponse), 431, "too large"}, limits);
  check_response_error(
      {"too large, incomplete", std::string(kRfcResponse.substr(0, 40)), 431, "too large"}, limits);
}

// ---------------------------------------------------------------- helpers

TEST_CASE("header_has_token: comma-separated, OWS-tolerant, case-insensitive") {
  CHECK(header_has_token("Upgrade", "upgrade"));
  CHECK(header_has_token("UPGRADE", "Upgrade"));
  CHECK(header_has_token("keep-alive, Upgrade", "upgrade"));
  CHECK(header_has_token("keep-alive,Upgrade", "upgrade"));
  CHECK(header_has_token("Upgrade, keep-alive", "upgrade"));
  CHECK(header_has_token("keep-alive , \tUpgrade\t ,close", "upgrade"));
  CHECK(header_has_token(",, upgrade ,,", "upgrade"));
  CHECK(header_has_token(" websocket", "websocket"));
  CHECK(header_has_token("h2c, WebSocket", "websocket"));

  CHECK_FALSE(header_has_token("", "upgrade"));
  CHECK_FALSE(header_has_token(",,,", "upgrade"));
  CHECK_FALSE(header_has_token("keep-alive", "upgrade"));
  CHECK_FALSE(header_has_token("upgrades", "upgrade"));
  CHECK_FALSE(header_has_token("notupgrade", "upgrade"));
  CHECK_FALSE(header_has_token("up grade", "upgrade"));
  CHECK_FALSE(header_has_token("keep-alive upgrade", "upgrade"));
  CHECK_FALSE(header_has_token("upgrade;q=1", "upgrade"));
  CHECK_FALSE(header_has_token("websocket/13", "websocket"));
  CHECK_FALSE(header_has_token("\"upgrade\"", "upgrade"));
  CHECK_FALSE(header_has_token("upgrade", ""));
  CHECK_FALSE(header_has_token(", ,", ""));
}

TEST_CASE("iequals: ASCII case-insensitive equality") {
  CHECK(iequals("", ""));
  CHECK(iequals("Host", "host"));
  CHECK(iequals("SEC-WEBSOCKET-KEY", "Sec-WebSocket-Key"));
  CHECK(iequals("abcXYZ09-_", "ABCxyz09-_"));
  CHECK_FALSE(iequals("Host", "Hos"));
  CHECK_FALSE(iequals("Host", "Hostx"));
  CHECK_FALSE(iequals("", "a"));
  CHECK_FALSE(iequals("Host", "Hast"));
  // Only letters fold: '[' / '{' and '@' / '`' differ by the case bit but are not letters.
  CHECK_FALSE(iequals("[", "{"));
  CHECK_FALSE(iequals("@", "`"));
  CHECK_FALSE(iequals("^", "~"));
  // No locale folding of bytes >= 0x80.
  CHECK(iequals("\xc3\xa9", "\xc3\xa9"));
  CHECK_FALSE(iequals("\xc3\xa9", "\xc3\x89"));
}

TEST_CASE("iequals: names of eight bytes and more agree with the byte-by-byte rule") {
  // Every pair of bytes at every position of a 14-byte name (one whole word and the
  // overlapping last one): equal exactly when both are the same after folding A-Z.
  const auto fold = [](int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  int mismatches = 0;
  for (std::size_t pos : {0, 5, 7, 8, 13}) {
    for (int x = 0; x < 256; ++x) {
      for (int y = 0; y < 256; ++y) {
        std::string a = "Content-Length";
        std::string b = "content-length";
        a[pos] = static_cast<char>(x);
        b[pos] = static_cast<char>(y);
        if (iequals(a, b) != (fold(x) == fold(y))) ++mismatches;
      }
    }
  }
  CHECK(mismatches == 0);
  CHECK(iequals("TRANSFER-ENCODING", "transfer-encoding"));
  CHECK(iequals("Sec-WebSocket-Extensions", "sec-websocket-extensions"));
  CHECK_FALSE(iequals("Sec-WebSocket-Extensionz", "sec-websocket-extensions"));
  CHECK_FALSE(iequals("[ec-WebSocket", "{ec-websocket"));
  static_assert(iequals("Content-Length", "content-length"));
  static_assert(!iequals("Content-Length", "content-lengtx"));
}
