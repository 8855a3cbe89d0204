#include "gateway/h1/h1_request.h"

#include "proxy/codec/hop_by_hop.h"

namespace wsgate::gateway::h1 {
namespace {

using http1::header_has_token;
using http1::iequals;

http::Checked<http::RequestHead> refuse(int status, std::string reason,
                                        http::ExtraFields fields = {}) {
  http::Checked<http::RequestHead> r;
  r.refusal = {status, std::move(reason), std::move(fields)};
  return r;
}

// True when any field named `name` lists `token`: list fields may be split over several
// lines (RFC 9110 5.3), e.g. "Connection: keep-alive" + "Connection: Upgrade".
bool any_has_token(const http1::RequestHead& head, std::string_view name, std::string_view token) {
  for (const http1::Header& h : head.headers)
    if (iequals(h.name, name) && header_has_token(h.value, token)) return true;
  return false;
}

// RFC 9110 7.6.1: hop-by-hop fields, and those the Connection field names.
bool is_hop_by_hop(const http::ConnectionOptions& options, std::string_view name) {
  // Host becomes the request's authority.
  return http::is_hop_by_hop_name(name) || iequals(name, "host") || options.names(name);
}

}  // namespace

http::Checked<http::RequestHead> request_from_h1(const http1::RequestHead& head,
                                                 std::string_view scheme) {
  http::Checked<http::RequestHead> out;
  http::RequestHead& r = out.value;
  r.method.assign(head.method);
  r.scheme.assign(scheme);
  r.version = head.version_minor == 0 ? http::Version::Http10 : http::Version::Http11;
  // One more for the X-Request-Id the exchange adds (gateway/exchange/request_id.h): no
  // regrowth of the list for it.
  r.fields.reserve(head.headers.size() + 1);

  if (head.method == "CONNECT") {
    // RFC 9110 9.3.6: the request-target is the tunnel's host:port (authority-form).
    r.authority.assign(head.target);
    for (const http1::Header& h : head.headers)
      if (!iequals(h.name, "host")) r.fields.push_back({std::string(h.name), std::string(h.value)});
    return out;
  }

  const bool upgrade = head.count("Upgrade") != 0;
  // RFC 9112 3.2: exactly one Host; RFC 6455 4.2.1 item 2: it names the server.
  const std::size_t hosts = head.count("Host");
  if (hosts == 0) return refuse(400, "missing Host header");
  if (hosts > 1) return refuse(400, "more than one Host header");
  r.authority.assign(head.find("Host")->value);
  if (r.authority.empty()) return refuse(400, "empty Host header");

  std::string_view target = head.target;
  if (const auto scheme_end = target.find("://");
      scheme_end != std::string_view::npos && !target.starts_with('/')) {
    // RFC 9112 3.2.2: an absolute-form target's authority replaces Host; the upstream
    // gets the origin form. RFC 3986 3.1: the scheme is case-insensitive; only http and
    // https name this gateway's resources.
    const std::string_view uri_scheme = target.substr(0, scheme_end);
    if (!iequals(uri_scheme, "http") && !iequals(uri_scheme, "https"))
      return refuse(400, "request-target scheme must be http or https");
    std::string_view rest = target.substr(scheme_end + 3);
    const auto slash = rest.find_first_of("/?");
    r.authority.assign(rest.substr(0, slash));
    if (const auto at = r.authority.rfind('@'); at != std::string::npos)
      return refuse(400, "userinfo in the request-target (RFC 9110 4.2.4)");
    // RFC 9110 4.2.1: an http(s) URI has a non-empty host.
    if (r.authority.empty()) return refuse(400, "empty authority in the request-target");
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  r.path.assign(target);
  if (r.path.starts_with('?')) r.path.insert(0, "/");

  const http::ConnectionOptions options(head.headers);
  if (upgrade) {
    // The client asks to switch protocols: a WebSocket request, whose HTTP/1.1 form is
    // checked here and answered by the exchange after routing (RFC 6455 4.2.1 items 1,
    // 3 and 4; the key, item 5, with the other WebSocket fields).
    r.protocol = "websocket";
    if (head.method != "GET") {
      // RFC 9110 15.5.6: 405 carries Allow.
      r.upgrade_refusal = {405, "WebSocket handshake requires GET", {{"Allow", "GET"}}};
    } else if (head.version_minor < 1) {
      r.upgrade_refusal = {400, "WebSocket handshake requires HTTP/1.1", {}};
    } else if (!any_has_token(head, "Upgrade", "websocket")) {
      r.upgrade_refusal = {400, "Upgrade header does not contain \"websocket\"", {}};
    } else if (!options.names("upgrade")) {
      r.upgrade_refusal = {400, "Connection header does not contain \"Upgrade\"", {}};
    }
  }
  for (const http1::Header& h : head.headers)
    if (!is_hop_by_hop(options, h.name))
      r.fields.push_back({std::string(h.name), std::string(h.value)});
  return out;
}

}  // namespace wsgate::gateway::h1
