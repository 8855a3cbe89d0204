#include "proxy/codec/http_forward.h"

#include <array>
#include <string_view>

#include "proxy/codec/hop_by_hop.h"

namespace wsgate::proxy {
namespace {

// The options of a head's Connection fields (RFC 9110 7.6.1: the fields they name are
// hop-by-hop too), split into tokens once rather than once per field.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const http1::ResponseHead& head) : head_(head) {
    for (const http1::Header& h : head.headers) {
      if (!http1::iequals(h.name, "connection")) continue;
      std::string_view value = h.value;
      while (!value.empty()) {
        const std::size_t comma = value.find(',');
        const std::string_view token = trim(value.substr(0, comma));
        if (!token.empty()) {
          if (count_ < tokens_.size()) tokens_[count_] = token;
          ++count_;
        }
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
      }
    }
  }
  bool names(std::string_view field) const {
    if (count_ <= tokens_.size()) {
      for (std::size_t i = 0; i < count_; ++i)
        if (http1::iequals(tokens_[i], field)) return true;
      return false;
    }
    for (const http1::Header& h : head_.headers)  // many options: look at all
      if (http1::iequals(h.name, "connection") && http1::header_has_token(h.value, field))
        return true;
    return false;
  }

 private:
  // RFC 9110 5.6.1: list members are separated by commas and optional whitespace.
  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }

  const http1::ResponseHead& head_;
  std::array<std::string_view, 6> tokens_;
  std::size_t count_ = 0;
};

bool hop_by_hop(const ConnectionOptions& options, std::string_view name) {
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
  const ConnectionOptions options(head);
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
