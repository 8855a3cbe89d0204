// HTTP/1.1 message-head codec (RFC 9112): request and response heads, strict and
// bounded. A pure codec: it takes bytes and fills a struct, it does no I/O. Used by the
// gateway for client requests and by the upstream side for the upstream's response.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec/ascii_case.h"

namespace wsgate::http1 {

struct Header {
  std::string_view name;   // as received (compare case-insensitively)
  std::string_view value;  // leading/trailing OWS trimmed
};

// The views in a head point into its own `raw`. Copying or moving a head re-points the
// views at the destination's `raw` (a defaulted copy would leave them pointing into the
// source, and moving a short string would too, because of the small-string buffer).
// Views that do not point into `raw` (set by hand, e.g. in tests) are copied as they are.
struct RequestHead {
  RequestHead() = default;
  RequestHead(const RequestHead& other);
  RequestHead(RequestHead&& other) noexcept;
  RequestHead& operator=(const RequestHead& other);
  RequestHead& operator=(RequestHead&& other) noexcept;
  ~RequestHead() = default;

  // The head's bytes, up to and including the final CRLFCRLF; the views below point here.
  std::string raw;
  std::string_view method;
  std::string_view target;  // request-target as received
  int version_minor = 1;    // HTTP/1.<minor>
  std::vector<Header> headers;

  // First header with this name (case-insensitive), or nullptr.
  [[nodiscard]] const Header* find(std::string_view name) const;
  // Number of headers with this name (case-insensitive).
  [[nodiscard]] std::size_t count(std::string_view name) const;
};

struct ResponseHead {
  ResponseHead() = default;
  ResponseHead(const ResponseHead& other);
  ResponseHead(ResponseHead&& other) noexcept;
  ResponseHead& operator=(const ResponseHead& other);
  ResponseHead& operator=(ResponseHead&& other) noexcept;
  ~ResponseHead() = default;

  std::string raw;  // as in RequestHead
  int version_minor = 1;
  int status = 0;
  std::string_view reason;
  std::vector<Header> headers;

  [[nodiscard]] const Header* find(std::string_view name) const;
  [[nodiscard]] std::size_t count(std::string_view name) const;
};

struct Limits {
  std::size_t max_head_bytes = std::size_t{16} * 1024;  // request line + headers + CRLFs
  std::size_t max_headers = 100;
};

enum class ParseState {
  Incomplete,  // no CRLFCRLF yet and still under max_head_bytes: feed more bytes
  Complete,    // out is filled; head_length bytes of the input belong to the head
  Error,       // error_status / error_reason say why
};

struct ParseResult {
  ParseState state = ParseState::Incomplete;
  std::size_t head_length = 0;  // with Complete
  int error_status = 0;         // with Error: 400 malformed, 431 too large, 505 version
  std::string error_reason;     // one line, safe to send to the client
};

// `input` holds the bytes received so far (from the start of the message). The parser
// looks for the end of the head, then validates everything in it:
//  - request line "METHOD SP request-target SP HTTP/1.x CRLF" (method a token, target
//    without CTL/SP); HTTP/1.0 and 1.1 accepted, other versions -> 505;
//  - header fields "name: OWS value OWS CRLF": name a token, no whitespace before ':'
//    (RFC 9112 5.1), no obs-fold (RFC 9112 5.2), no CTL except HTAB in values;
//  - lines end in CRLF (a bare LF is rejected);
//  - more than max_headers fields or more than max_head_bytes -> 431;
//  - Content-Length together with Transfer-Encoding, more than one Content-Length, or a
//    non-numeric Content-Length -> 400 (RFC 9112 6.3, request smuggling).
// Empty lines before the request line are skipped (RFC 9112 2.2) and count in
// head_length. A bare LF is rejected as soon as it is seen, even before the head is
// complete. On Error, `out` holds unspecified partial content.
ParseResult parse_request_head(std::string_view input, const Limits& limits, RequestHead& out);

// Same rules for a status line "HTTP/1.1 SP 3DIGIT SP reason CRLF" and its headers.
// The status is 100..599; "HTTP/1.1 101\r\n" (no SP before an empty reason) is tolerated.
ParseResult parse_response_head(std::string_view input, const Limits& limits, ResponseHead& out);

// True when a comma-separated header value contains `token` (case-insensitive), e.g.
// Connection: keep-alive, Upgrade.
bool header_has_token(std::string_view value, std::string_view token);

// ASCII case-insensitive equality (proxy/codec/ascii_case.h).
using ascii::iequals;

}  // namespace wsgate::http1
