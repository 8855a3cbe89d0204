#include "gateway/exchange/path_normalize.h"

#include <doctest/doctest.h>

#include <string>

using wsgate::gateway::normalize_path;
using wsgate::gateway::normalize_target;

namespace {

std::string norm(std::string_view path) {
  const auto r = normalize_path(path);
  REQUIRE_MESSAGE(r.ok(), r.refusal.reason);
  return r.value;
}

std::string refused(std::string_view path) {
  const auto r = normalize_path(path);
  REQUIRE(!r.ok());
  CHECK(r.refusal.status == 400);
  return r.refusal.reason;
}

}  // namespace

TEST_CASE("path normalisation: already normal paths are unchanged") {
  for (const char* p :
       {"/", "/echo", "/echo/", "/a/b/c", "/a%20b", "/%C3%A9", "/a:b@c!$&'()*+,;="}) {
    CAPTURE(p);
    CHECK(norm(p) == p);
  }
}

TEST_CASE("path normalisation: percent-encoding (RFC 3986 6.2.2.1, 6.2.2.2)") {
  CHECK(norm("/%41") == "/A");
  CHECK(norm("/ech%6F") == "/echo");
  CHECK(norm("/ech%6f") == "/echo");
  CHECK(norm("/%7e%2D%5f%2E") == "/~-_.");
  // Reserved and other bytes keep their encoding, in uppercase.
  CHECK(norm("/a%3fb") == "/a%3Fb");
  CHECK(norm("/a%3Fb") == "/a%3Fb");
  CHECK(norm("/%c3%a9") == "/%C3%A9");
  CHECK(norm("/%25") == "/%25");
  // Decoded once only: "%252e" is the three characters "%2e", not a dot.
  CHECK(norm("/%252e%252e/x") == "/%252e%252e/x");
}

TEST_CASE("path normalisation: dot segments (RFC 3986 5.2.4)") {
  CHECK(norm("/a/../b") == "/b");
  CHECK(norm("/x/../echo") == "/echo");
  CHECK(norm("/a/./b") == "/a/b");
  CHECK(norm("/a/b/../../c") == "/c");
  CHECK(norm("/..") == "/");
  CHECK(norm("/../../etc") == "/etc");
  CHECK(norm("/a/..") == "/");
  CHECK(norm("/a/b/..") == "/a/");
  CHECK(norm("/a/.") == "/a/");
  CHECK(norm("/.") == "/");
  CHECK(norm("/a/..b/c") == "/a/..b/c");  // not a dot segment
  CHECK(norm("/a/.b") == "/a/.b");
  // Encoded dots are dots.
  CHECK(norm("/%2e%2e/") == "/");
  CHECK(norm("/%2E%2E/admin") == "/admin");
  CHECK(norm("/echo/%2e%2e/admin") == "/admin");
  CHECK(norm("/a/.%2e/b") == "/b");
  CHECK(norm("/a/%2e/b") == "/a/b");
}

TEST_CASE("path normalisation: empty segments merge") {
  CHECK(norm("//x") == "/x");
  CHECK(norm("//") == "/");
  CHECK(norm("/a//b///c") == "/a/b/c");
  CHECK(norm("/a//") == "/a/");
  CHECK(norm("//..//x") == "/x");
}

TEST_CASE("path normalisation: encoded '/' and NUL, bad escapes -> 400") {
  CHECK(refused("/A%2fB") == "encoded \"/\" (%2F) in the path");
  CHECK(refused("/A%2FB") == "encoded \"/\" (%2F) in the path");
  CHECK(refused("/echo/..%2f..%2fadmin") == "encoded \"/\" (%2F) in the path");
  CHECK(refused("/a%00b") == "encoded NUL (%00) in the path");
  for (const char* p : {"/%", "/%4", "/%zz", "/a%g1", "/%%41"}) {
    CAPTURE(p);
    CHECK(refused(p) == "invalid percent-encoding in the path (RFC 3986 2.1)");
  }
}

TEST_CASE("path normalisation: not an absolute path -> unchanged") {
  CHECK(norm("*") == "*");
  CHECK(norm("") == "");
}

TEST_CASE("target normalisation: the query is kept as it is") {
  auto t = normalize_target("/x/../ech%6F?room=%2e%2e/a&x=%2f");
  REQUIRE(t.ok());
  CHECK(t.value == "/echo?room=%2e%2e/a&x=%2f");
  t = normalize_target("/a//b?");
  REQUIRE(t.ok());
  CHECK(t.value == "/a/b?");
  CHECK(normalize_target("/a%2fb?x").refusal.status == 400);
}

TEST_CASE("target normalisation: the quick check agrees with the normalisation") {
  // target_is_normal lets the exchange skip normalize_target: it must never say "normal"
  // of a target that normalisation would change (or refuse).
  for (const char* t :
       {"/", "/echo", "/echo?a=%41", "/echo?x=//y", "/a/./b", "/a/../b", "//x", "/a/.", "/%41",
        "/%2F", "/a%2", "/a.b/c.d?q=/.", "/.hidden", "/a#/./b", "*", "/a/b/", "/a?"}) {
    CAPTURE(t);
    const auto r = normalize_target(t);
    if (wsgate::gateway::target_is_normal(t)) {
      CHECK(r.ok());
      CHECK(r.value == t);
    }
  }
  CHECK(wsgate::gateway::target_is_normal("/echo?x=//y/./%41"));
  CHECK_FALSE(wsgate::gateway::target_is_normal("/a/./b?q"));
  CHECK_FALSE(wsgate::gateway::target_is_normal("/a%41"));
  CHECK_FALSE(wsgate::gateway::target_is_normal("//a"));
}
