// The protocol-neutral request: what every downstream protocol produces and every
// exchange reads. The HTTP/1.1 connection builds it from a parsed head
// (gateway/h1/h1_request.h), an HTTP/2 stream from its field list (gateway/h2/h2_mapping.h);
// nothing downstream of those two knows which protocol the client spoke.
//
// A refusal on the way (a malformed request, a policy) is one `Refusal`: an HTTP status,
// a one-line reason safe to send and log, and extra response fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/codec/ascii_case.h"

namespace wsgate::http {

struct Field {
  std::string name;  // as received (HTTP/2: lowercase); compare case-insensitively
  std::string value;
  bool operator==(const Field&) const = default;
};
using Fields = std::vector<Field>;

using ExtraFields = std::vector<std::pair<std::string, std::string>>;

// A request the gateway answers itself.
struct Refusal {
  int status = 0;      // the HTTP status
  std::string reason;  // one line for the response body and the access log
  ExtraFields fields;  // e.g. Allow, Sec-WebSocket-Version, Proxy-Authenticate
};

enum class Version { Http10, Http11, Http2 };
const char* to_string(Version v);

struct RequestHead {
  std::string method;     // "GET", "CONNECT", ...
  std::string scheme;     // "http" or "https" (HTTP/1.1: from the connection)
  std::string authority;  // host[:port]: Host or :authority; CONNECT: the tunnel target
  std::string path;       // origin-form path and query; empty for CONNECT
  // The protocol the client asks to switch to: "websocket" for an RFC 6455 Upgrade or
  // an RFC 8441 extended CONNECT; empty for every other request.
  std::string protocol;
  Version version = Version::Http11;
  // End-to-end fields, in arrival order; Host is `authority`, and the fields that only
  // carried the HTTP/1.1 upgrade (Upgrade, Connection) are not here.
  Fields fields;
  // HTTP/1.1 only: the client asked to upgrade but broke a rule of RFC 6455 4.2.1 (not
  // GET, not HTTP/1.1, Upgrade without "websocket", Connection without "upgrade"). The
  // WebSocket exchange answers it once the route is known, as every handshake problem.
  Refusal upgrade_refusal;  // status 0: none
  // The request has content (HTTP/1.1: a Content-Length above 0 or a chunked body). Its
  // length, when known, is the Content-Length field above; otherwise it streams.
  bool has_body = false;

  [[nodiscard]] bool is_websocket() const { return protocol == "websocket"; }
  // First field with this name (case-insensitive), or nullptr.
  [[nodiscard]] const Field* find(std::string_view name) const;
  // Number of fields with this name (case-insensitive).
  [[nodiscard]] std::size_t count(std::string_view name) const;
};

// A field of a ResponseHead, borrowed (see there).
struct FieldView {
  std::string_view name;
  std::string_view value;
  bool operator==(const FieldView&) const = default;
};

// An upstream's response as the client side renders it (HTTP forwarding): end-to-end
// fields only; how its content is delimited on the client's connection is the
// downstream's choice, from `body`. Its text is borrowed, not copied: the views point
// into the upstream's parsed head (and strings its builder keeps) and are valid only
// during the HttpDownstream::begin_response call it is given to, which writes or copies
// them. No allocation per field per response.
struct ResponseHead {
  int status = 0;
  std::string_view reason;  // HTTP/1.1 reason phrase, as the upstream sent it
  // Without hop-by-hop fields; a Content-Length stays here only when it does not frame
  // content (a HEAD or 304 answer, or 0).
  std::vector<FieldView> fields;
  enum class Body {
    None,    // no content follows
    Length,  // content_length bytes follow
    Stream,  // content of unknown length follows (chunked, or until close upstream)
  };
  Body body = Body::None;
  uint64_t content_length = 0;
};

// Either a value or the refusal that replaced it.
template <typename T>
struct Checked {
  T value{};
  Refusal refusal;  // status 0: `value` is good
  [[nodiscard]] bool ok() const { return refusal.status == 0; }
};

// ASCII case-insensitive equality (proxy/codec/ascii_case.h).
using ascii::iequals;

// In a list of "name=value" pairs separated by `sep` (a Cookie field: ';', a query: '&'),
// the value of the first pair with exactly `name`; blanks around a pair are ignored.
std::optional<std::string_view> find_pair(std::string_view list, char sep, std::string_view name);
// The value of the first cookie `name` in the request's Cookie fields (RFC 6265 5.4).
std::optional<std::string_view> find_cookie(const RequestHead& request, std::string_view name);

}  // namespace wsgate::http
