#include "proxy/codec/http_forward.h"

#include <string_view>

#include "proxy/codec/hop_by_hop.h"

namespace wsgate::proxy {
namespace {

bool hop_by_hop(const http::ConnectionOptions& options, std::string_view name) {
  return http::is_hop_by_hop_name(name) || options.names(name);
}

}  // namespace

std::string_view via_member(http::Version version) {
  switch (version) {
    case http::Version::Http10:
      return "1.0 wsgate";
    case http::Version::Http11:
      return "1.1 wsgate";
    case http::Version::Http2:
      return "2 wsgate";
  }
  return "1.1 wsgate";
}

std::string build_forward_request(const http::RequestHead& request, const ForwardedFor& fwd,
                                  bool chunked, bool keep_alive, bool via) {
  std::string out;
  out.reserve(256 + request.path.size());
  out.append(request.method).append(" ").append(request.path).append(" HTTP/1.1\r\n");
  // Expect is answered by the gateway (RFC 9110 10.1.1: it sends 100 Continue); the
  // framing is the gateway's own (below).
  append_forwarded_fields(out, request, fwd, {"expect", "content-length"});
  // The framing is the gateway's: the client's Content-Length (one, digits only: the
  // parser made sure) or chunked for a body of unknown length.
  if (chunked) {
    append_field(out, "Transfer-Encoding", "chunked");
  } else if (const http::Field* cl = request.find("content-length"); cl != nullptr) {
    append_field(out, "Content-Length", cl->value);
  }
  if (!keep_alive) append_field(out, "Connection", "close");
  if (via) append_field(out, "Via", via_member(request.version));
  out.append("\r\n");
  return out;
}

http::ResponseHead response_for_client(const http1::ResponseHead& head,
                                       const http1::BodyFraming& framing, bool via) {
  http::ResponseHead r;
  r.status = head.status;
  r.reason = head.reason;
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
  const http::ConnectionOptions options(head.headers);
  r.fields.reserve(head.headers.size());
  for (const http1::Header& h : head.headers) {
    if (hop_by_hop(options, h.name)) continue;
    // A Content-Length that frames content is the downstream's to write.
    if (r.body != http::ResponseHead::Body::None && http1::iequals(h.name, "content-length"))
      continue;
    r.fields.push_back({h.name, h.value});
  }
  if (via)
    r.fields.push_back({"Via", via_member(head.version_minor == 0 ? http::Version::Http10
                                                                  : http::Version::Http11)});
  return r;
}

}  // namespace wsgate::proxy
