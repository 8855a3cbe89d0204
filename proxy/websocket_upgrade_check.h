// The one check of an upstream's answer to a WebSocket opening handshake (RFC 6455
// 4.1), shared by the exchanges and the WebSocket health probe. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/http1_parser.h"

namespace wsgate::proxy {

// What the upstream agreed to, from its 101.
struct AcceptedUpgrade {
  std::string subprotocol;    // Sec-WebSocket-Protocol, if any
  bool rsv1_allowed = false;  // permessage-deflate agreed (RFC 7692 6: RSV1 marks compression)
};

// `response` is a 101 to a request that carried `key`. Null when it is a valid WebSocket
// accept; otherwise why not (one line). RFC 6455 4.1: a client fails the connection on a
// wrong Sec-WebSocket-Accept or without Upgrade: websocket, so the gateway checks first.
std::optional<std::string> check_upgrade_response(const http1::ResponseHead& response,
                                                  std::string_view key);

// The agreed subprotocol and extensions of a checked 101.
AcceptedUpgrade accepted_upgrade(const http1::ResponseHead& response);

}  // namespace wsgate::proxy
