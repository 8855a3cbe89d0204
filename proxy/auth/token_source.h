// Where a route's JWT is found in a request (conf::JwtAuth::token_from), and how it is
// taken out again when the upstream must not see it (strip_token). Pure functions over a
// RequestHead.
//
//   bearer           Authorization: Bearer <token> (RFC 6750 2.1; the scheme is
//                    case-insensitive, RFC 9110 11.1)
//   cookie:NAME      the cookie NAME (RFC 6265 5.4; HTTP/2 may split Cookie, RFC 9113 8.2.3)
//   query:NAME       the query parameter NAME (percent-decoded)
//   subprotocol:P    the Sec-WebSocket-Protocol entry "P<token>" (RFC 6455 4.1: the one
//                    header a browser's WebSocket lets a page set)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/codec/request_head.h"

namespace wsgate::proxy {

struct FoundToken {
  std::string token;
  conf::JwtAuth::TokenSource source;
};

std::optional<FoundToken> find_token(const http::RequestHead& request,
                                     const std::vector<conf::JwtAuth::TokenSource>& sources);

// Removes the token from where it was found: the Authorization field, the cookie, the
// query parameter, or the subprotocol entry (fields left empty are removed).
void strip_token(http::RequestHead& request, const FoundToken& found);

// `path` with the value of every query parameter named by a query source replaced by
// "redacted" (for the access log, which never holds a token); `path` when none is there.
std::string redact_token_query(std::string_view path,
                               const std::vector<conf::JwtAuth::TokenSource>& sources);

}  // namespace wsgate::proxy
