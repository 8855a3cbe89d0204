// The request id: one per request, for the access log's `request_id` and the upstream's
// X-Request-Id, so a line in wsgate's log and one in the upstream's can be matched. A
// trusted proxy (`trusted_proxies`) may have named the request already: its X-Request-Id
// is kept when it looks like an id; otherwise, and for every other peer, the gateway
// makes a new one (a client cannot choose the id its request is logged under).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

// 1 to 128 visible ASCII characters (no space, no control byte): what the gateway keeps
// of a trusted proxy's X-Request-Id.
bool valid_request_id(std::string_view id);

// 32 lowercase hex digits (128 random bits), like nginx's $request_id.
std::string generate_request_id();

// The id of `request` from the TCP peer (or PROXY header client) `peer_ip`: the first
// X-Request-Id when the peer is in `trusted` and the value is valid, else a new one.
std::string choose_request_id(std::string_view peer_ip, const http::RequestHead& request,
                              const std::vector<conf::IpNetwork>& trusted);

// Replaces every X-Request-Id field of `request` by one carrying `id` (what the upstream
// gets with the rest of the end-to-end fields).
void set_request_id(http::RequestHead& request, std::string_view id);

}  // namespace wsgate::gateway
