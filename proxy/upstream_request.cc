#include "proxy/upstream_request.h"

#include <array>

namespace wsgate::proxy {
namespace {

constexpr std::array<std::string_view, 14> kNotForwarded = {
    // RFC 9110 7.6.1: hop-by-hop.
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authorization", "proxy-authenticate",
    // Set by the gateway only (the request's Host is its authority).
    "host", "sec-websocket-key", "x-forwarded-proto", "x-forwarded-host", "x-client-cert-subject"};

bool forwarded(std::string_view name) {
  for (auto n : kNotForwarded)
    if (http::iequals(n, name)) return false;
  return true;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

std::string build_upstream_request(const http::RequestHead& request, const ForwardedFor& fwd,
                                   std::string_view key) {
  std::string out;
  out.reserve(256 + request.path.size());
  out.append("GET ").append(request.path).append(" HTTP/1.1\r\n");
  append_header(out, "Host", request.authority);
  std::string forwarded_for;
  for (const http::Field& f : request.fields) {
    if (http::iequals(f.name, "x-forwarded-for")) {
      if (!forwarded_for.empty()) forwarded_for.append(", ");
      forwarded_for.append(f.value);
      continue;
    }
    if (forwarded(f.name)) append_header(out, f.name, f.value);
  }
  append_header(out, "Upgrade", "websocket");
  append_header(out, "Connection", "Upgrade");
  append_header(out, "Sec-WebSocket-Key", key);
  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(fwd.client_ip);
  append_header(out, "X-Forwarded-For", forwarded_for);
  append_header(out, "X-Forwarded-Proto", fwd.proto);
  append_header(out, "X-Forwarded-Host", request.authority);
  if (!fwd.client_cert_subject.empty())
    append_header(out, "X-Client-Cert-Subject", fwd.client_cert_subject);
  out.append("\r\n");
  return out;
}

}  // namespace wsgate::proxy
