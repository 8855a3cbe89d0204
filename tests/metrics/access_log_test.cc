// Access log lines: logfmt and JSON carry the same fields.
#include <doctest/doctest.h>

#include "metrics/access_log.h"

using namespace wsgate::metrics;

TEST_CASE("JSON access line") {
  ConnectionStats s;
  s.client_to_upstream.count_frame(0x1, 10);
  s.client_to_upstream.count_message(0x1);
  s.closed_by = Side::Client;
  s.close_code = 1000;
  AccessRecord r;
  r.client = "127.0.0.1:5000";
  r.listener = "public";
  r.route = "chat";
  r.upstream = "127.0.0.1:9001";
  r.status = 101;
  r.duration_ms = 42;
  r.stats = &s;
  const std::string line = format_access_json(r);
  CHECK(line.rfind(R"({"ts":")", 0) == 0);
  CHECK(line.back() == '\n');
  CHECK(line.find(R"("client":"127.0.0.1:5000","listener":"public","route":"chat")") !=
        std::string::npos);
  CHECK(line.find(R"("status":101,"duration_ms":42,"c2u_bytes":10,"c2u_msgs":1)") !=
        std::string::npos);
  CHECK(line.find(R"("close_code":1000,"closed_by":"client"})") != std::string::npos);

  AccessRecord rejected;
  rejected.client = "c";
  rejected.listener = "l";
  rejected.route = "-";
  rejected.upstream = "-";
  rejected.status = 404;
  rejected.reason = "no route for \"x\"";
  const std::string j = format_access_json(rejected);
  CHECK(j.find(R"("close_code":null,"closed_by":null,"reason":"no route for \"x\""})") !=
        std::string::npos);
}

TEST_CASE("a tunnel's access line says how it ended instead of a close code") {
  ConnectionStats s;
  s.client_to_upstream.count_raw(7);
  s.closed_by = Side::Upstream;
  s.tunnel_end = TunnelEnd::UpstreamReset;
  AccessRecord r;
  r.client = "127.0.0.1:5000";
  r.listener = "proxy";
  r.route = "-";
  r.upstream = "-";
  r.status = 200;
  r.target = "example.org:443";
  r.stats = &s;
  const std::string line = format_access_line(r);
  CHECK(line.find("close_code=- closed_by=upstream tunnel_end=upstream_reset") !=
        std::string::npos);
  CHECK(format_access_json(r).find(
            R"("close_code":null,"closed_by":"upstream","tunnel_end":"upstream_reset")") !=
        std::string::npos);
}

namespace {

AccessRecord hostile_record() {
  AccessRecord r;
  r.client = "127.0.0.1:5000";
  r.listener = "public";
  r.route = "-";
  r.upstream = "-";
  r.status = 400;
  // A target and a reason (which may quote a header) a client wrote to forge lines and
  // drive a terminal: CR, LF, ESC, DEL, a C1 CSI, an invalid UTF-8 byte, quote, backslash.
  r.target = "x\r\naccess ts=now client=forged \x1b[2J\x7f\xc2\x9b\xff\"\\";
  r.reason = "bad header \"a\nb\" \t";
  return r;
}

bool only_printable_ascii(std::string_view line) {
  for (std::size_t i = 0; i + 1 < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return line.back() == '\n';
}

}  // namespace

TEST_CASE("access lines escape control bytes, quotes and non-UTF-8 in every field") {
  const std::string text = format_access_line(hostile_record());
  INFO(text);
  CHECK(only_printable_ascii(text));
  CHECK(text.find('\n') == text.size() - 1);  // exactly one line
  CHECK(text.find(R"( target="x\r\naccess ts=now client=forged \x1b[2J\x7f\u009b\xff\"\\")") !=
        std::string::npos);
  CHECK(text.find(R"( reason="bad header \"a\nb\" \t")") != std::string::npos);

  const std::string json = format_access_json(hostile_record());
  INFO(json);
  CHECK(only_printable_ascii(json));
  CHECK(
      json.find(R"("target":"x\r\naccess ts=now client=forged \u001b[2J\u007f\u009b\u00ff\"\\")") !=
      std::string::npos);

  // Plain UTF-8 (not control characters) stays readable in both.
  AccessRecord r = hostile_record();
  r.target = "caf\xc3\xa9.example:443";
  r.reason = "";
  CHECK(format_access_line(r).find(" target=caf\xc3\xa9.example:443") != std::string::npos);
  CHECK(format_access_json(r).find("\"target\":\"caf\xc3\xa9.example:443\"") != std::string::npos);
}

TEST_CASE("access lines carry the request's host, user agent, origin, subprotocol and id") {
  ConnectionStats s;
  s.closed_by = Side::Client;
  s.close_code = 1000;
  AccessRecord r;
  r.client = "127.0.0.1:5000";
  r.listener = "public";
  r.route = "chat";
  r.upstream = "127.0.0.1:9001";
  r.status = 101;
  r.stats = &s;
  r.path = "/chat?room=1";
  r.host = "chat.example";
  r.user_agent = "Mozilla/5.0 (X11; Linux x86_64)";
  r.origin = "https://chat.example";
  r.subprotocol = "v2.chat";
  r.request_id = "0123456789abcdef0123456789abcdef";
  const std::string text = format_access_line(r);
  INFO(text);
  CHECK(text.find(" path=\"/chat?room=1\" host=chat.example user_agent=\"Mozilla/5.0 (X11; Linux "
                  "x86_64)\" origin=https://chat.example subprotocol=v2.chat "
                  "request_id=0123456789abcdef0123456789abcdef\n") != std::string::npos);
  CHECK(text.find(" method=") == std::string::npos);  // a WebSocket has no method field
  const std::string json = format_access_json(r);
  INFO(json);
  CHECK(
      json.find(R"("path":"/chat?room=1","host":"chat.example","user_agent":"Mozilla/5.0 )"
                R"j((X11; Linux x86_64)","origin":"https://chat.example","subprotocol":"v2.chat",)j"
                R"("request_id":"0123456789abcdef0123456789abcdef"})") != std::string::npos);

  // Absent ones are left out; a hostile user agent stays on its line.
  r.origin = "";
  r.subprotocol = "";
  r.user_agent = "x\naccess client=forged";
  const std::string other = format_access_line(r);
  INFO(other);
  CHECK(other.find(" origin=") == std::string::npos);
  CHECK(other.find(" subprotocol=") == std::string::npos);
  CHECK(other.find(R"( user_agent="x\naccess client=forged")") != std::string::npos);
  CHECK(other.find('\n') == other.size() - 1);
}
