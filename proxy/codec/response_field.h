// Adding a field the gateway sets to an HTTP/1.1 response head it relays as received
// (the upstream's WebSocket 101, whose raw bytes go to an HTTP/1.1 client unchanged and
// whose fields an HTTP/2 client gets mapped). Pure function, no I/O.
#pragma once

#include <string_view>

#include "proxy/codec/http1_parser.h"

namespace wsgate::proxy {

// `head` with "name: value" as its last field (raw bytes and views both). False, with
// `head` unchanged, when the result is no valid head (a value with CR, LF or NUL).
bool append_response_field(http1::ResponseHead& head, std::string_view name,
                           std::string_view value);

}  // namespace wsgate::proxy
