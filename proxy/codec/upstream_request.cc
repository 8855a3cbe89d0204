#include "proxy/codec/upstream_request.h"

#include <array>
#include <cstring>

#include "proxy/codec/hop_by_hop.h"

namespace wsgate::proxy {
namespace {

constexpr std::array<std::string_view, 6> kNotForwarded = {
    // For the gateway's own proxy authentication only.
    "proxy-authorization", "proxy-authenticate",
    // Set by the gateway only (the request's Host is its authority).
    "host", "x-forwarded-proto", "x-forwarded-host", "x-client-cert-subject"};

bool forwarded(std::string_view name, std::initializer_list<std::string_view> also_drop) {
  if (http::is_hop_by_hop_name(name)) return false;
  for (auto n : kNotForwarded)
    if (http::iequals(n, name)) return false;
  for (auto n : also_drop)
    if (http::iequals(n, name)) return false;
  return true;
}

}  // namespace

void append_field(std::string& out, std::string_view name, std::string_view value) {
  // One size change and straight copies per field line, not four appends (heads are
  // built for every forwarded request and response).
  const std::size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  char* p = out.data() + at;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '\r';
  *p = '\n';
}

void append_forwarded_fields(std::string& out, const http::RequestHead& request,
                             const ForwardedFor& fwd,
                             std::initializer_list<std::string_view> also_drop) {
  append_field(out, "Host", request.authority);
  std::string forwarded_for;
  for (const http::Field& f : request.fields) {
    if (http::iequals(f.name, "x-forwarded-for")) {
      if (!forwarded_for.empty()) forwarded_for.append(", ");
      forwarded_for.append(f.value);
      continue;
    }
    if (forwarded(f.name, also_drop)) append_field(out, f.name, f.value);
  }
  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(fwd.client_ip);
  append_field(out, "X-Forwarded-For", forwarded_for);
  append_field(out, "X-Forwarded-Proto", fwd.proto);
  append_field(out, "X-Forwarded-Host", request.authority);
  if (!fwd.client_cert_subject.empty())
    append_field(out, "X-Client-Cert-Subject", fwd.client_cert_subject);
}

std::string build_upstream_request(const http::RequestHead& request, const ForwardedFor& fwd,
                                   std::string_view key) {
  std::string out;
  out.reserve(256 + request.path.size());
  out.append("GET ").append(request.path).append(" HTTP/1.1\r\n");
  // The client's own key is dropped: the gateway makes the key the upstream answers.
  append_forwarded_fields(out, request, fwd, {"sec-websocket-key"});
  append_field(out, "Upgrade", "websocket");
  append_field(out, "Connection", "Upgrade");
  append_field(out, "Sec-WebSocket-Key", key);
  out.append("\r\n");
  return out;
}

}  // namespace wsgate::proxy
