#include "proxy/upstream_request.h"

#include <array>

namespace wsgate::proxy {
namespace {

constexpr std::array<std::string_view, 9> kHopByHop = {
    "connection", "keep-alive",          "proxy-connection",  "te", "trailer", "transfer-encoding",
    "upgrade",    "proxy-authorization", "proxy-authenticate"};

bool is_hop_by_hop(const http1::RequestHead& head, std::string_view name) {
  for (auto h : kHopByHop)
    if (http1::iequals(h, name)) return true;
  // RFC 9110 7.6.1: fields named in Connection are hop-by-hop too.
  for (const auto& h : head.headers) {
    if (http1::iequals(h.name, "connection") && http1::header_has_token(h.value, name)) return true;
  }
  // Our own X-Forwarded-Proto/-Host replace whatever the client claimed.
  return http1::iequals(name, "x-forwarded-proto") || http1::iequals(name, "x-forwarded-host") ||
         http1::iequals(name, "x-client-cert-subject");
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

std::string build_upstream_request(const http1::RequestHead& head, const ForwardedFor& fwd) {
  std::string out;
  out.reserve(head.raw.size() + 128);
  out.append(head.method).append(" ").append(head.target).append(" HTTP/1.1\r\n");
  std::string_view host;
  std::string forwarded_for;
  for (const auto& h : head.headers) {
    if (http1::iequals(h.name, "host")) host = h.value;
    if (http1::iequals(h.name, "x-forwarded-for")) {
      if (!forwarded_for.empty()) forwarded_for.append(", ");
      forwarded_for.append(h.value);
      continue;
    }
    if (is_hop_by_hop(head, h.name)) continue;
    append_header(out, h.name, h.value);
  }
  append_header(out, "Upgrade", "websocket");
  append_header(out, "Connection", "Upgrade");
  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(fwd.client_ip);
  append_header(out, "X-Forwarded-For", forwarded_for);
  append_header(out, "X-Forwarded-Proto", fwd.proto);
  if (!host.empty()) append_header(out, "X-Forwarded-Host", host);
  if (!fwd.client_cert_subject.empty())
    append_header(out, "X-Client-Cert-Subject", fwd.client_cert_subject);
  out.append("\r\n");
  return out;
}

}  // namespace wsgate::proxy
