#include "proxy/codec/http_forward.h"

#include <array>
#include <string_view>

namespace wsgate::proxy {
namespace {

// Not forwarded to the upstream: hop-by-hop (RFC 9110 7.6.1), set by the gateway only,
// or answered by it (Expect: RFC 9110 10.1.1, the gateway sends 100 Continue).
constexpr std::array<std::string_view, 16> kNotForwarded = {"connection",
                                                            "keep-alive",
                                                            "proxy-connection",
                                                            "te",
                                                            "trailer",
                                                            "transfer-encoding",
                                                            "upgrade",
                                                            "proxy-authorization",
                                                            "proxy-authenticate",
                                                            "host",
                                                            "x-forwarded-proto",
                                                            "x-forwarded-host",
                                                            "x-client-cert-subject",
                                                            "expect",
                                                            "content-length",
                                                            "x-forwarded-for"};

bool forwarded(std::string_view name) {
  for (auto n : kNotForwarded)
    if (http::iequals(n, name)) return false;
  return true;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

constexpr std::array<std::string_view, 7> kHopByHop = {
    "connection", "keep-alive",        "proxy-connection", "te",
    "trailer",    "transfer-encoding", "upgrade"};

bool hop_by_hop(const http1::ResponseHead& head, std::string_view name) {
  for (auto n : kHopByHop)
    if (http1::iequals(n, name)) return true;
  for (const http1::Header& h : head.headers)
    if (http1::iequals(h.name, "connection") && http1::header_has_token(h.value, name)) return true;
  return false;
}

}  // namespace

std::string build_forward_request(const http::RequestHead& request, const ForwardedFor& fwd,
                                  bool chunked, bool keep_alive) {
  std::string out;
  out.reserve(256 + request.path.size());
  out.append(request.method).append(" ").append(request.path).append(" HTTP/1.1\r\n");
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
  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(fwd.client_ip);
  append_header(out, "X-Forwarded-For", forwarded_for);
  append_header(out, "X-Forwarded-Proto", fwd.proto);
  append_header(out, "X-Forwarded-Host", request.authority);
  if (!fwd.client_cert_subject.empty())
    append_header(out, "X-Client-Cert-Subject", fwd.client_cert_subject);
  // The framing is the gateway's: the client's Content-Length (one, digits only: the
  // parser made sure) or chunked for a body of unknown length.
  if (chunked) {
    append_header(out, "Transfer-Encoding", "chunked");
  } else if (const http::Field* cl = request.find("content-length"); cl != nullptr) {
    append_header(out, "Content-Length", cl->value);
  }
  if (!keep_alive) append_header(out, "Connection", "close");
  out.append("\r\n");
  return out;
}

http::ResponseHead response_for_client(const http1::ResponseHead& head,
                                       const http1::BodyFraming& framing) {
  http::ResponseHead r;
  r.status = head.status;
  r.reason.assign(head.reason);
  switch (framing.kind) {
    case http1::BodyKind::None:
      r.body = http::ResponseHead::Body::None;
      break;
    case http1::BodyKind::Length:
      r.body = http::ResponseHead::Body::Length;
      r.content_length = framing.length;
      break;
    case http1::BodyKind::Chunked:
    case http1::BodyKind::UntilClose:
      r.body = http::ResponseHead::Body::Stream;
      break;
  }
  r.fields.reserve(head.headers.size());
  for (const http1::Header& h : head.headers) {
    if (hop_by_hop(head, h.name)) continue;
    // A Content-Length that frames content is the downstream's to write.
    if (r.body != http::ResponseHead::Body::None && http1::iequals(h.name, "content-length"))
      continue;
    r.fields.push_back({std::string(h.name), std::string(h.value)});
  }
  return r;
}

}  // namespace wsgate::proxy
