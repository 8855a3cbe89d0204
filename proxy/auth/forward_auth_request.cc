// Forward auth's two pure mappings (proxy/auth/forward_auth.h): the subrequest's head
// from the client's request, and the verdict from the auth service's answer.
#include <array>
#include <string_view>

#include "proxy/auth/forward_auth.h"
#include "proxy/codec/upstream_request.h"

namespace wsgate::proxy {
namespace {

bool single_line(std::string_view value) {
  return value.find_first_of("\r\n", 0) == std::string_view::npos &&
         value.find('\0') == std::string_view::npos;
}

// A field line, unless its value could split the head (cannot happen: the HTTP/1.1 and
// HTTP/2 parsers refuse CR, LF and NUL in values; RFC 9110 5.5, RFC 9113 8.2.1).
void append_safe(std::string& out, std::string_view name, std::string_view value) {
  if (single_line(name) && single_line(value)) append_field(out, name, value);
}

bool client_answer_field(std::string_view name) {
  for (std::string_view n : kClientAnswerFields)
    if (http1::iequals(n, name)) return true;
  return false;
}

}  // namespace

const char* to_string(ForwardAuthVerdict::Kind kind) {
  switch (kind) {
    case ForwardAuthVerdict::Kind::Allowed:
      return "allowed";
    case ForwardAuthVerdict::Kind::Denied:
      return "denied";
    case ForwardAuthVerdict::Kind::Failed:
      return "failed";
  }
  return "?";
}

std::string build_forward_auth_request(const conf::ForwardAuth& forward,
                                       const http::RequestHead& request,
                                       const ForwardAuthFacts& facts) {
  std::string out;
  out.reserve(256 + forward.path.size() + request.path.size());
  // RFC 9110 9.3.1: GET, no content; the path is origin-form (conf/config_auth.cc).
  out.append("GET ").append(forward.path).append(" HTTP/1.1\r\n");
  append_safe(out, "Host", facts.host);  // RFC 9112 3.2: required in HTTP/1.1
  append_safe(out, "X-Forwarded-Method", request.method);
  append_safe(out, "X-Forwarded-Uri", request.path);
  append_safe(out, "X-Forwarded-Host", request.authority);
  append_safe(out, "X-Forwarded-Proto", facts.proto);
  append_safe(out, "X-Forwarded-For", facts.client_ip);
  for (const std::string& name : forward.request_headers) {
    if (conf::forward_auth_never_copied(name)) continue;
    for (const http::Field& f : request.fields)
      if (http::iequals(f.name, name)) append_safe(out, f.name, f.value);
  }
  // RFC 9110 8.6: a GET without content says so, so that no server waits for one.
  append_field(out, "Content-Length", "0");
  if (!facts.keep_alive) append_field(out, "Connection", "close");
  out.append("\r\n");
  return out;
}

ForwardAuthVerdict classify_forward_auth_answer(const conf::ForwardAuth& forward,
                                                const http1::ResponseHead& head, std::string body) {
  ForwardAuthVerdict v;
  v.status = head.status;
  for (const http1::Header& h : head.headers)
    if (http1::iequals(h.name, "cache-control") && http1::header_has_token(h.value, "no-store"))
      v.no_store = true;  // RFC 9111 5.2.2.5
  if (head.status < 200) {
    // RFC 9110 15.2.2: 101 answers an Upgrade, which the subrequest never asks for.
    v.kind = ForwardAuthVerdict::Kind::Failed;
    v.reason = "auth service answered " + std::to_string(head.status);
    return v;
  }
  if (head.status < 300) {
    // RFC 9110 15.3: the request is authorised; the chosen fields go upstream.
    v.kind = ForwardAuthVerdict::Kind::Allowed;
    for (const std::string& name : forward.response_headers)
      for (const http1::Header& h : head.headers)
        if (http1::iequals(h.name, name))
          v.upstream_fields.push_back({std::string(h.name), std::string(h.value)});
    return v;
  }
  // Anything else is the service's answer to the client: 401 with its challenge (RFC 9110
  // 15.5.2), 403 (15.5.4), a redirect to a login page (15.4), even a 5xx of its own.
  v.kind = ForwardAuthVerdict::Kind::Denied;
  for (const http1::Header& h : head.headers)
    if (client_answer_field(h.name))
      v.client_fields.emplace_back(std::string(h.name), std::string(h.value));
  v.body = std::move(body);
  return v;
}

}  // namespace wsgate::proxy
