// The close endpoints' paths and parameters (metrics/admin/admin_close.h).
#include <doctest/doctest.h>

#include <string>

#include "metrics/admin/admin_close.h"

using namespace wsgate::metrics;

TEST_CASE("close codes an administrator may send (RFC 6455 7.4)") {
  for (unsigned ok : {1000u, 1001u, 1008u, 1011u, 3000u, 4000u, 4999u}) {
    CAPTURE(ok);
    CHECK(is_admin_close_code(ok));
  }
  for (unsigned bad : {0u, 999u, 1002u, 1003u, 1005u, 1006u, 1015u, 2999u, 5000u, 65535u}) {
    CAPTURE(bad);
    CHECK_FALSE(is_admin_close_code(bad));
  }
}

TEST_CASE("parse_close_path") {
  CloseRequest r;
  CHECK_FALSE(parse_close_path("/connections", r).has_value());
  CHECK_FALSE(parse_close_path("/metrics", r).has_value());
  CHECK_FALSE(parse_close_path("/connections/0-1", r).has_value());
  CHECK(parse_close_path("/connections/1-42/close", r) == std::string());
  CHECK(r.target == CloseRequest::Target::Connection);
  CHECK(r.worker == 1);
  CHECK(r.id == 42u);
  CHECK(parse_close_path("/connections/42/close", r)->find("expected \"<worker>-<n>\"") !=
        std::string::npos);
  CHECK_FALSE(parse_close_path("/connections/1-x/close", r)->empty());
  CHECK(parse_close_path("/upstreams/chat%20v2/servers/%5B::1%5D:9001/close", r) == std::string());
  CHECK(r.target == CloseRequest::Target::Server);
  CHECK(r.upstream == "chat v2");
  CHECK(r.server == "[::1]:9001");
  CHECK(parse_close_path("/upstreams/a+b/servers/10.0.0.1:1/close", r) == std::string());
  CHECK(r.upstream == "a+b");  // '+' is a plus in a path
}

TEST_CASE("parse_close_query") {
  CloseRequest r;
  CHECK(parse_close_query("", r).empty());
  CHECK(r.code == 1001);
  CHECK(r.reason == "closed by the administrator");
  CHECK(parse_close_query("code=4000&reason=back+soon", r).empty());
  CHECK(r.code == 4000);
  CHECK(r.reason == "back soon");
  CHECK(parse_close_query("code=1005", r) ==
        R"(code: expected 1000, 1001, 1008, 1011 or 3000-4999 (RFC 6455 7.4), got "1005")");
  CHECK_FALSE(parse_close_query("code=-1", r).empty());
  CHECK_FALSE(parse_close_query("code=4000x", r).empty());
  CHECK(parse_close_query("code=1000&code=1001", r) == "code: given twice");
  CHECK(parse_close_query("reason=" + std::string(123, 'a'), r).empty());
  CHECK(r.reason.size() == 123u);
  CHECK(parse_close_query("reason=" + std::string(124, 'a'), r) ==
        "reason: at most 123 bytes (RFC 6455 5.5), got 124");
  CHECK(parse_close_query("reason=%C3%28", r) == "reason: not valid UTF-8 (RFC 6455 5.5.1)");
  CHECK(parse_close_query("force=1", r) == R"(unknown parameter "force" (allowed: code, reason))");
}

TEST_CASE("is_valid_utf8 (RFC 3629)") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("\xC3\xBC"));                // ü
  CHECK(is_valid_utf8("\xF0\x9F\x98\x80"));        // U+1F600
  CHECK_FALSE(is_valid_utf8("\xC3"));              // cut short
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xFF"));
}
