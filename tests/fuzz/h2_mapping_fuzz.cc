// HTTP/2 request field lists -> HTTP/1.1 heads (gateway/h2_mapping.h), the path every
// h2 stream takes before the HTTP/1.1 code sees it, and HTTP/1.1 response heads ->
// HTTP/2 response fields.
//
// Input (text, so seeds are readable): lines up to the first empty line are the request
// fields, "name value" split at the first space (values may hold CR, NUL and other
// bytes, not LF); the rest, if any, is an HTTP/1.1 response head from the upstream.
//
// Properties:
//  - a mapped head is read by the HTTP/1.1 parser as exactly one head (Complete with
//    head_length == its size) or refused (400/431): never a shorter head followed by
//    bytes the gateway would take for WebSocket data, never Incomplete;
//  - when it parses: target == :path, Host == :authority, one Sec-WebSocket-Key (ours),
//    and h1 -> h2 -> h1 gives the same head again (as parsed);
//  - tunnels: "CONNECT <:authority>", Host == :authority;
//  - refusals have a status in the documented set and a one-line reason (checked only
//    with WSGATE_FUZZ_STRICT=1 until issue 14 defect 5 is fixed: tests/fuzz/known/);
//  - response mapping: :status first, lowercase names, no connection-specific field,
//    101 -> 200 and back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/h2_mapping.h"
#include "proxy/http1_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace h2map = wsgate::gateway::h2map;
namespace http1 = wsgate::http1;
using wsgate::fuzz::is_one_line;

namespace {

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 1.3

const std::string* find(const h2map::Fields& fields, std::string_view name) {
  for (const auto& f : fields)
    if (f.name == name) return &f.value;
  return nullptr;
}

// The head as the HTTP/1.1 session reads it: one whole head or a refusal.
bool parse_mapped(const std::string& head, http1::RequestHead& out) {
  const http1::ParseResult r = http1::parse_request_head(head, http1::Limits{}, out);
  FUZZ_CHECK(r.state != http1::ParseState::Incomplete);
  if (r.state == http1::ParseState::Error) {
    FUZZ_CHECK(r.error_status == 400 || r.error_status == 431);
    return false;
  }
  FUZZ_CHECK(r.head_length == head.size());
  return true;
}

void check_websocket(const h2map::Fields& fields) {
  const h2map::RequestMapping m = h2map::extended_connect_to_h1(fields, kKey);
  if (!m.ok()) {
    FUZZ_CHECK(m.status == 400 || m.status == 426 || m.status == 501);
    FUZZ_CHECK(!m.reason.empty());
    // Raw field names reach the reason (and from there the access log).
    FUZZ_CHECK_KNOWN("issue 14 defect 5", is_one_line(m.reason));
    FUZZ_CHECK(m.head.empty());
    return;
  }
  http1::RequestHead head;
  if (!parse_mapped(m.head, head)) return;
  FUZZ_CHECK(head.method == "GET");
  FUZZ_CHECK(head.target == *find(fields, ":path"));
  FUZZ_CHECK(head.count("host") == 1 && head.find("host")->value == *find(fields, ":authority"));
  FUZZ_CHECK(head.count("sec-websocket-key") == 1);
  FUZZ_CHECK(head.find("sec-websocket-key")->value == kKey);

  // h1 -> h2 -> h1: the same head, as the upstream's parser reads it. (Not byte for
  // byte: an empty cookie crumb leaves "a=1; " whose trailing space the parser trims.)
  const h2map::Fields back = h2map::h1_upgrade_to_extended_connect(head, *find(fields, ":scheme"));
  const h2map::RequestMapping again = h2map::extended_connect_to_h1(back, kKey);
  FUZZ_CHECK(again.ok());
  http1::RequestHead head2;
  FUZZ_CHECK(parse_mapped(again.head, head2));
  FUZZ_CHECK(head2.method == head.method && head2.target == head.target);
  FUZZ_CHECK(head2.headers.size() == head.headers.size());
  for (std::size_t i = 0; i < head.headers.size(); ++i) {
    FUZZ_CHECK(head2.headers[i].name == head.headers[i].name);
    FUZZ_CHECK(head2.headers[i].value == head.headers[i].value);
  }
}

void check_tunnel(const h2map::Fields& fields) {
  const h2map::RequestMapping m = h2map::tunnel_connect_to_h1(fields);
  if (!m.ok()) {
    FUZZ_CHECK(m.status == 400);
    FUZZ_CHECK(!m.reason.empty());
    FUZZ_CHECK_KNOWN("issue 14 defect 5", is_one_line(m.reason));
    return;
  }
  http1::RequestHead head;
  if (!parse_mapped(m.head, head)) return;
  FUZZ_CHECK(head.method == "CONNECT");
  FUZZ_CHECK(head.target == *find(fields, ":authority"));
  FUZZ_CHECK(head.count("host") == 1 && head.find("host")->value == head.target);
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
    FUZZ_CHECK(name != "connection" && name != "upgrade" && name != "transfer-encoding" &&
               name != "keep-alive" && name != "proxy-connection" && name != "te");
    if (m.websocket) FUZZ_CHECK(name != "content-length" && name != "sec-websocket-accept");
  }
  if (m.websocket) FUZZ_CHECK(!m.has_body);
  if (m.body_until_close) FUZZ_CHECK(m.has_body);

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

  check_websocket(fields);
  check_tunnel(fields);
  const bool tunnel = h2map::is_tunnel_request(fields);
  if (tunnel) FUZZ_CHECK(find(fields, ":protocol") == nullptr);
  check_response(input);
  return 0;
}
