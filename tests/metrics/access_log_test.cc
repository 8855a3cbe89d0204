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
