#include "gateway/h2/h2_mapping.h"

#include <array>
#include <cstdlib>

#include "gateway/exchange/error_response.h"
#include "metrics/text_escape.h"
#include "proxy/codec/websocket_key.h"

namespace wsgate::gateway::h2map {
namespace {

// RFC 9113 8.2.2: connection-specific fields are malformed in HTTP/2, and never
// forwarded from HTTP/1.1 to HTTP/2. (te is allowed with the value "trailers" only.)
constexpr std::array<std::string_view, 5> kConnectionSpecific = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"};

bool is_connection_specific(std::string_view name) {
  for (auto n : kConnectionSpecific)
    if (http1::iequals(n, name)) return true;
  return false;
}

// RFC 9110 5.6.2 tchar, lowercase only (RFC 9113 8.2.1: uppercase names are malformed).
bool is_lower_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// RFC 9113 8.2.1: no NUL, CR or LF anywhere, no leading or trailing SP/HTAB.
bool is_valid_value(std::string_view v) {
  for (char c : v)
    if (c == '\0' || c == '\r' || c == '\n') return false;
  if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t'))
    return false;
  return true;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

http::Checked<http::RequestHead> refuse(int status, std::string reason) {
  http::Checked<http::RequestHead> m;
  m.refusal = {status, metrics::printable(reason), {}};  // names and values are client bytes
  return m;
}

struct Pseudo {
  std::optional<std::string_view> method, scheme, authority, path, protocol;
};

// Fills `p` from the pseudo-header fields; "" when the block is well-formed, else why not.
std::string read_pseudo_headers(const Fields& fields, Pseudo& p) {
  bool regular_seen = false;
  for (const auto& f : fields) {
    if (f.name.empty()) return "empty field name";
    if (!is_valid_value(f.value))
      return "invalid value for field \"" + f.name + "\" (RFC 9113 8.2.1)";
    if (f.name.front() != ':') {
      regular_seen = true;
      if (!is_lower_token(f.name))
        return "invalid field name \"" + f.name + "\" (RFC 9113 8.2.1: lowercase tokens)";
      if (is_connection_specific(f.name) || (f.name == "te" && f.value != "trailers"))
        return "connection-specific field \"" + f.name + "\" (RFC 9113 8.2.2)";
      continue;
    }
    // RFC 9113 8.3: pseudo-header fields come first, each at most once, only known ones.
    if (regular_seen) return "pseudo-header " + f.name + " after a regular field (RFC 9113 8.3)";
    std::optional<std::string_view>* slot = nullptr;
    if (f.name == ":method") slot = &p.method;
    if (f.name == ":scheme") slot = &p.scheme;
    if (f.name == ":authority") slot = &p.authority;
    if (f.name == ":path") slot = &p.path;
    if (f.name == ":protocol") slot = &p.protocol;
    if (slot == nullptr) return "unknown pseudo-header " + f.name + " (RFC 9113 8.3)";
    if (slot->has_value()) return "repeated pseudo-header " + f.name + " (RFC 9113 8.3)";
    *slot = f.value;
  }
  return {};
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The regular fields of the request, as the exchanges read them: Host is :authority
// (RFC 9113 8.3.1), a client's Sec-WebSocket-Key means nothing over HTTP/2 (RFC 8441 5),
// te ("trailers") concerns this hop only; cookie crumbs are joined with "; " (RFC 9113
// 8.2.3) so that the request reads as one Cookie field, as over HTTP/1.1.
http::Fields regular_fields(const Fields& fields) {
  http::Fields out;
  out.reserve(fields.size());
  std::string cookie;
  for (const auto& f : fields) {
    if (f.name.starts_with(':')) continue;
    if (f.name == "host" || f.name == "sec-websocket-key" || f.name == "te") continue;
    if (f.name == "cookie") {
      if (!cookie.empty()) cookie.append("; ");
      cookie.append(f.value);
      continue;
    }
    out.push_back(f);
  }
  if (!cookie.empty()) out.push_back({"cookie", std::move(cookie)});
  return out;
}

}  // namespace

http::Checked<http::RequestHead> request_from_h2(const Fields& fields) {
  Pseudo p;
  if (std::string why = read_pseudo_headers(fields, p); !why.empty())
    return refuse(400, "malformed request: " + why);
  if (!p.method) return refuse(400, "missing :method");
  http::Checked<http::RequestHead> out;
  http::RequestHead& r = out.value;
  r.version = http::Version::Http2;
  if (*p.method == "CONNECT" && !p.protocol) {
    // RFC 9113 8.5: a CONNECT (a tunnel) has :method and :authority only.
    if (!p.authority || p.authority->empty())
      return refuse(400, "missing :authority (RFC 9113 8.5)");
    if (p.scheme || p.path) return refuse(400, "CONNECT with :scheme or :path (RFC 9113 8.5)");
    r.method = "CONNECT";
    r.authority.assign(*p.authority);
    r.fields = regular_fields(fields);
    return out;
  }
  if (p.protocol) {
    // RFC 8441 4: :protocol belongs to CONNECT requests only, and names the protocol
    // from the Upgrade token registry; tokens compare case-insensitively (RFC 9110 7.8).
    if (*p.method != "CONNECT")
      return refuse(400, ":protocol on a " + std::string(*p.method) + " request");
    if (!http1::iequals(*p.protocol, "websocket"))
      return refuse(501, "unsupported :protocol \"" + std::string(*p.protocol) +
                             "\": only websocket (RFC 8441 4)");
  }
  // RFC 8441 4 (extended CONNECT) and RFC 9113 8.3.1 (every other request): :scheme,
  // :path and an authority.
  if (!p.scheme) return refuse(400, "missing :scheme (RFC 9113 8.3.1)");
  if (!p.path) return refuse(400, "missing :path (RFC 9113 8.3.1)");
  if (!p.authority) return refuse(400, "missing :authority (RFC 8441 4)");
  // RFC 8441 5: "https" for wss:// URIs and "http" for ws:// ones.
  if (*p.scheme != "https" && *p.scheme != "http")
    return refuse(400, ":scheme must be http or https, got \"" + std::string(*p.scheme) + "\"");
  if (p.path->empty() || p.path->front() != '/')
    return refuse(400, ":path must start with \"/\", got \"" + std::string(*p.path) + "\"");
  if (p.authority->empty() || p.authority->find('@') != std::string_view::npos)
    return refuse(400, "invalid :authority \"" + std::string(*p.authority) +
                           "\" (RFC 9113 8.3.1: no userinfo)");
  // An extended CONNECT is the HTTP/2 form of a GET with Upgrade: websocket.
  r.method = p.protocol ? "GET" : std::string(*p.method);
  if (p.protocol) r.protocol = "websocket";
  r.scheme.assign(*p.scheme);
  r.authority.assign(*p.authority);
  r.path.assign(*p.path);
  r.fields = regular_fields(fields);
  return out;
}

Fields h1_upgrade_to_extended_connect(const http1::RequestHead& head, std::string_view scheme) {
  Fields out = {
      {":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", std::string(scheme)}};
  out.push_back({":path", std::string(head.target)});
  if (const http1::Header* host = head.find("host"))
    out.push_back({":authority", std::string(host->value)});
  for (const auto& h : head.headers) {
    const std::string name = lowercase(h.name);
    if (name == "host" || name == "sec-websocket-key" || is_connection_specific(name)) continue;
    out.push_back({name, std::string(h.value)});
  }
  return out;
}

ResponseMapping h1_response_to_h2(const http1::ResponseHead& head) {
  ResponseMapping m;
  m.websocket = head.status == 101;
  // RFC 8441 5: a successful extended CONNECT is answered with 200, not 101.
  m.fields.push_back({":status", std::to_string(m.websocket ? 200 : head.status)});
  const http1::Header* connection = head.find("connection");
  for (const auto& h : head.headers) {
    const std::string name = lowercase(h.name);
    if (is_connection_specific(name) || name == "te") continue;
    // RFC 9110 7.6.1: fields named by Connection are hop-by-hop too.
    if (connection != nullptr && http1::header_has_token(connection->value, name)) continue;
    if (m.websocket && (name == "sec-websocket-accept" || name == "content-length")) continue;
    m.fields.push_back({name, std::string(h.value)});
  }
  if (m.websocket) return m;
  const http1::Header* cl = head.find("content-length");
  if (cl != nullptr) {
    m.content_length = std::strtoull(std::string(cl->value).c_str(), nullptr, 10);
    m.has_body = m.content_length > 0;
  } else if (head.status >= 200 && head.status != 204 && head.status != 304) {
    // RFC 9112 6.3: without Content-Length (or with chunked coding, which the HTTP/1.1
    // side does not decode) the body runs until the connection ends.
    m.has_body = true;
    m.body_until_close = true;
  }
  return m;
}

Fields forwarded_response_to_h2(const http::ResponseHead& head) {
  Fields out;
  out.reserve(head.fields.size() + 2);
  out.push_back({":status", std::to_string(head.status)});
  bool has_length = false;
  for (const auto& f : head.fields) {
    std::string name = lowercase(f.name);
    if (is_connection_specific(name) || name == "te") continue;
    if (name == "content-length") {
      // A HEAD or 304 answer's length describes content that is not sent; kept once.
      if (has_length || head.body != http::ResponseHead::Body::None) continue;
      has_length = true;
    }
    out.push_back({std::move(name), std::string(f.value)});
  }
  if (head.body == http::ResponseHead::Body::Length)
    out.push_back({"content-length", std::to_string(head.content_length)});
  return out;
}

std::string h2_response_to_h1(const Fields& fields, std::string_view key) {
  int status = 0;
  for (const auto& f : fields)
    if (f.name == ":status") status = std::atoi(f.value.c_str());
  std::string out;
  if (status == 200) {
    out = "HTTP/1.1 101 Switching Protocols\r\n";
    append_header(out, "Upgrade", "websocket");
    append_header(out, "Connection", "Upgrade");
    append_header(out, "Sec-WebSocket-Accept", ws::compute_accept(key));
  } else {
    out = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  }
  for (const auto& f : fields)
    if (!f.name.starts_with(':')) append_header(out, f.name, f.value);
  out.append("\r\n");
  return out;
}

}  // namespace wsgate::gateway::h2map
