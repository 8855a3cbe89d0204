// Writes PROXY protocol headers: the sending side of proxy/codec/proxy_protocol.h, for
// upstreams with `send_proxy_protocol` (the upstream connector writes one before its
// request, a health probe writes a LOCAL one). A pure codec: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/codec/proxy_protocol.h"

namespace wsgate::proxy_protocol {

// An Inet or Inet6 endpoint from an IP address in text ("192.0.2.7", "2001:db8::7") and a
// port; nullopt for anything that is not an address.
std::optional<Endpoint> endpoint(std::string_view ip, uint16_t port);

// The header naming the connection `source` -> `destination`: v1 "PROXY TCP4|TCP6 ..."
// (spec 2.1), v2 with the PROXY command (spec 2.2). Endpoints of different families are
// both written as IPv6 (an IPv4 address as ::ffff:a.b.c.d); an Unspecified one makes the
// header of encode_local().
std::string encode(Version version, const Endpoint& source, const Endpoint& destination);

// The header that names no client: v1 "PROXY UNKNOWN\r\n", v2 the LOCAL command with
// AF_UNSPEC (spec 2.1, 2.2): the sender's own connection, e.g. a health check.
std::string encode_local(Version version);

}  // namespace wsgate::proxy_protocol
