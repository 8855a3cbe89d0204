// The auth service's own answer as the head a Downstream writes
// (auth_service_response_head, gateway/exchange/auth_step.cc).
#include "gateway/exchange/auth_step.h"

#include <doctest/doctest.h>

#include <string>

using namespace wsgate;

TEST_CASE("auth service answer: status, the passed fields, Content-Length, Connection close") {
  gateway::AuthOutcome::ServiceAnswer answer;
  answer.status = 401;
  answer.fields = {{"WWW-Authenticate", "Bearer realm=\"x\""},
                   {"Content-Type", "application/json"},
                   {"Set-Cookie", "a=1"},
                   {"Set-Cookie", "b=2"}};
  answer.body = R"({"error":"no"})";
  const http1::ResponseHead head = gateway::auth_service_response_head(answer);
  CHECK(head.status == 401);
  CHECK(head.reason == "Unauthorized");
  CHECK(head.raw ==
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n"
        "Content-Type: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        "Content-Length: 14\r\nConnection: close\r\n\r\n");
  CHECK(head.count("set-cookie") == 2);
}

TEST_CASE("auth service answer: a redirect, and 204 without Content-Length") {
  gateway::AuthOutcome::ServiceAnswer redirect{302, {{"Location", "https://login/"}}, ""};
  const http1::ResponseHead r = gateway::auth_service_response_head(redirect);
  CHECK(r.status == 302);
  CHECK(r.reason == "Found");
  REQUIRE(r.find("content-length") != nullptr);
  CHECK(r.find("content-length")->value == "0");
  gateway::AuthOutcome::ServiceAnswer permanent{308, {{"Location", "https://login/"}}, ""};
  CHECK(gateway::auth_service_response_head(permanent).reason == "Permanent Redirect");
  gateway::AuthOutcome::ServiceAnswer empty{204, {}, ""};
  const http1::ResponseHead e = gateway::auth_service_response_head(empty);
  CHECK(e.status == 204);
  CHECK(e.find("content-length") == nullptr);  // RFC 9110 8.6
}
