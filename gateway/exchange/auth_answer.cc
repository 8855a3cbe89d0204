#include "gateway/exchange/auth_answer.h"

#include <string>

#include "gateway/exchange/error_response.h"

namespace wsgate::gateway {
namespace {

// RFC 9110 15: the reason phrases of the statuses an auth service usually denies with;
// the rest come from the gateway's own table. A client must not rely on them anyway
// (RFC 9112 4).
const char* reason_phrase(int status) {
  switch (status) {
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 401:
      return "Unauthorized";
    default:
      return status_text(status);
  }
}

}  // namespace

http1::ResponseHead auth_service_response_head(const AuthOutcome::ServiceAnswer& answer) {
  std::string raw =
      "HTTP/1.1 " + std::to_string(answer.status) + " " + reason_phrase(answer.status) + "\r\n";
  for (const auto& [name, value] : answer.fields) raw += name + ": " + value + "\r\n";
  if (answer.status != 204 && answer.status != 304)
    raw += "Content-Length: " + std::to_string(answer.body.size()) + "\r\n";
  raw += "Connection: close\r\n\r\n";
  // The fields come from the HTTP/1.1 parser (no CR, LF or NUL), so the head parses; a
  // head that did not would be answered as the gateway's own 502.
  http1::ResponseHead head;
  const http1::Limits limits{64 * 1024, 200};
  if (http1::parse_response_head(raw, limits, head).state != http1::ParseState::Complete) {
    head = http1::ResponseHead();
    const std::string bad =
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    http1::parse_response_head(bad, limits, head);
  }
  return head;
}

}  // namespace wsgate::gateway
