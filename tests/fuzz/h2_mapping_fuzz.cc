// HTTP/2 request field lists -> the protocol-neutral request (gateway/h2/h2_mapping.h),
// the path every h2 stream takes before an exchange sees it, then the HTTP/1.1 upgrade
// the upstream gets (proxy/codec/upstream_request.h); and HTTP/1.1 response heads ->
// HTTP/2 response fields, as a handshake answer and as a forwarded request's response.
//
// Input (text, so seeds are readable): lines up to the first empty line are the request
// fields, "name value" split at the first space (values may hold CR, NUL and other
// bytes, not LF); the rest, if any, is an HTTP/1.1 response head from the upstream.
//
// Properties:
//  - refusals have a status in the documented set and a one-line reason (never a raw
//    control byte from the client: issue 14 defect 5);
//  - a WebSocket request: method GET, path == :path, authority == :authority, no
//    pseudo-header, Host, Sec-WebSocket-Key or connection-specific field among the
//    fields, at most one cookie field;
//  - the upstream request built from it is read by the HTTP/1.1 parser as exactly one
//    head (Complete with head_length == its size) or refused (400/431): never a shorter
//    head followed by bytes the upstream would take for WebSocket data; when it parses,
//    its target is the path, Host the authority, one Sec-WebSocket-Key (ours), and
//    reading it back as an HTTP/1.1 request gives the same authority and path;
//  - a tunnel request: CONNECT, authority == :authority, no path;
//  - response mapping: :status first, lowercase names, no connection-specific field,
//    101 -> 200 and back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/h1/h1_request.h"
#include "gateway/h2/h2_mapping.h"
#include "proxy/codec/http1_body.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/http_forward.h"
#include "proxy/codec/upstream_request.h"
#include "tests/fuzz/fuzz_check.h"

namespace h2map = wsgate::gateway::h2map;
namespace http = wsgate::http;
namespace http1 = wsgate::http1;
using wsgate::fuzz::is_one_line;

namespace {

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 1.3

const std::string* find(const h2map::Fields& fields, std::string_view name) {
  for (const auto& f : fields)
    if (f.name == name) return &f.value;
  return nullptr;
}

bool connection_specific(std::string_view name) {
  return name == "connection" || name == "upgrade" || name == "transfer-encoding" ||
         name == "keep-alive" || name == "proxy-connection" || name == "te";
}

void check_request(const h2map::Fields& fields) {
  const http::Checked<http::RequestHead> m = h2map::request_from_h2(fields);
  if (!m.ok()) {
    FUZZ_CHECK(m.refusal.status == 400 || m.refusal.status == 501);
    FUZZ_CHECK(!m.refusal.reason.empty());
    FUZZ_CHECK(is_one_line(m.refusal.reason));
    return;
  }
  const http::RequestHead& r = m.value;
  FUZZ_CHECK(r.version == http::Version::Http2);
  std::size_t cookies = 0;
  for (const auto& f : r.fields) {
    FUZZ_CHECK(!f.name.empty() && f.name.front() != ':');
    FUZZ_CHECK(f.name != "host" && f.name != "sec-websocket-key");
    FUZZ_CHECK(!connection_specific(f.name));
    cookies += f.name == "cookie" ? 1 : 0;
  }
  FUZZ_CHECK(cookies <= 1);
  if (r.method == "CONNECT" && r.protocol.empty()) {
    FUZZ_CHECK(find(fields, ":protocol") == nullptr);
    FUZZ_CHECK(r.authority == *find(fields, ":authority"));
    FUZZ_CHECK(r.path.empty());
    return;
  }
  FUZZ_CHECK(r.path == *find(fields, ":path"));
  FUZZ_CHECK(r.authority == *find(fields, ":authority"));
  if (!r.is_websocket()) return;
  FUZZ_CHECK(r.method == "GET");

  // What the upstream reads: exactly one head, or a refusal by its own parser.
  const std::string upstream =
      wsgate::proxy::build_upstream_request(r, {"192.0.2.1", "https", ""}, kKey);
  http1::RequestHead head;
  const http1::ParseResult pr = http1::parse_request_head(upstream, http1::Limits{}, head);
  FUZZ_CHECK(pr.state != http1::ParseState::Incomplete);
  if (pr.state == http1::ParseState::Error) {
    FUZZ_CHECK(pr.error_status == 400 || pr.error_status == 431);
    return;
  }
  FUZZ_CHECK(pr.head_length == upstream.size());
  FUZZ_CHECK(head.method == "GET" && head.target == r.path);
  FUZZ_CHECK(head.count("host") == 1 && head.find("host")->value == r.authority);
  FUZZ_CHECK(head.count("sec-websocket-key") == 1 && head.find("sec-websocket-key")->value == kKey);
  // Read back as an HTTP/1.1 client's request: the same structured request.
  const http::Checked<http::RequestHead> again =
      wsgate::gateway::h1::request_from_h1(head, "https");
  if (!again.ok()) {
    FUZZ_CHECK(again.refusal.status == 400);
    return;
  }
  FUZZ_CHECK(again.value.is_websocket());
  FUZZ_CHECK(again.value.authority == r.authority);
}

void check_response(std::string_view text) {
  http1::ResponseHead head;
  const http1::ParseResult r = http1::parse_response_head(text, http1::Limits{}, head);
  if (r.state != http1::ParseState::Complete) return;
  const h2map::ResponseMapping m = h2map::h1_response_to_h2(head);
  FUZZ_CHECK(!m.fields.empty() && m.fields.front().name == ":status");
  FUZZ_CHECK(m.websocket == (head.status == 101));
  FUZZ_CHECK(m.fields.front().value == std::to_string(m.websocket ? 200 : head.status));
  for (std::size_t i = 1; i < m.fields.size(); ++i) {
    const std::string& name = m.fields[i].name;
    FUZZ_CHECK(!name.empty() && name.front() != ':');
    for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    FUZZ_CHECK(!connection_specific(name));
    if (m.websocket) FUZZ_CHECK(name != "content-length" && name != "sec-websocket-accept");
  }
  if (m.websocket) FUZZ_CHECK(!m.has_body);
  if (m.body_until_close) FUZZ_CHECK(m.has_body);

  // A forwarded request's response (HTTP forwarding) on an HTTP/2 stream: the same field
  // rules, and a content-length exactly when the content's length is known (RFC 9113
  // 8.1.1: it must match the DATA), never two.
  const http1::BodyFraming framing = http1::response_body_framing(head, "GET");
  if (framing.ok() && head.status >= 200) {
    const http::ResponseHead fwd = wsgate::proxy::response_for_client(head, framing, /*via=*/false);
    const h2map::Fields f = h2map::forwarded_response_to_h2(fwd);
    FUZZ_CHECK(!f.empty() && f.front().name == ":status");
    std::size_t lengths = 0;
    for (std::size_t i = 1; i < f.size(); ++i) {
      FUZZ_CHECK(!f[i].name.empty() && f[i].name.front() != ':');
      for (char c : f[i].name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
      FUZZ_CHECK(!connection_specific(f[i].name));
      if (f[i].name == "content-length") ++lengths;
    }
    FUZZ_CHECK(lengths <= 1);
    if (fwd.body == http::ResponseHead::Body::Length) FUZZ_CHECK(lengths == 1);
    if (fwd.body == http::ResponseHead::Body::Stream) FUZZ_CHECK(lengths == 0);
  }

  // And back to HTTP/1.1: a head the parser takes whole, with the status mapped back.
  const std::string h1 = h2map::h2_response_to_h1(m.fields, kKey);
  http1::ResponseHead back;
  const http1::ParseResult rb = http1::parse_response_head(h1, http1::Limits{1 << 20, 1000}, back);
  FUZZ_CHECK(rb.state == http1::ParseState::Complete && rb.head_length == h1.size());
  // h2_response_to_h1 is the inverse for a handshake: :status 200 reads back as 101.
  FUZZ_CHECK(back.status == (head.status == 200 ? 101 : head.status));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  h2map::Fields fields;
  while (!input.empty()) {
    const std::size_t lf = input.find('\n');
    const std::string_view line = input.substr(0, lf);
    input = lf == std::string_view::npos ? std::string_view{} : input.substr(lf + 1);
    if (line.empty()) break;
    const std::size_t sp = line.find(' ');
    fields.push_back({std::string(line.substr(0, sp)), sp == std::string_view::npos
                                                           ? std::string()
                                                           : std::string(line.substr(sp + 1))});
    if (fields.size() > 64) break;
  }

  check_request(fields);
  check_response(input);
  return 0;
}
