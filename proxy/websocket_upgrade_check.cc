#include "proxy/websocket_upgrade_check.h"

#include "proxy/websocket_key.h"

namespace wsgate::proxy {

std::optional<std::string> check_upgrade_response(const http1::ResponseHead& response,
                                                  std::string_view key) {
  if (response.status != 101)
    return "answered " + std::to_string(response.status) + " instead of 101";
  const http1::Header* accept = response.find("sec-websocket-accept");
  if (accept == nullptr || accept->value != ws::compute_accept(key))
    return "answered 101 with a wrong Sec-WebSocket-Accept";
  const http1::Header* upgrade = response.find("upgrade");
  if (upgrade == nullptr || !http1::header_has_token(upgrade->value, "websocket"))
    return "answered 101 without Upgrade: websocket";
  return std::nullopt;
}

AcceptedUpgrade accepted_upgrade(const http1::ResponseHead& response) {
  AcceptedUpgrade a;
  if (const http1::Header* p = response.find("sec-websocket-protocol")) a.subprotocol = p->value;
  const http1::Header* ext = response.find("sec-websocket-extensions");
  a.rsv1_allowed =
      ext != nullptr && ext->value.find("permessage-deflate") != std::string_view::npos;
  return a;
}

}  // namespace wsgate::proxy
