// Trusted X-Forwarded-For (`trusted_proxies`): when the peer that sent a request is a
// trusted proxy, the client is the last address of the request's X-Forwarded-For chain
// that is not itself a trusted proxy, read from the right (each proxy appends the
// address it received the request from). A pure function; the exchange applies it to
// its DownstreamFacts when it starts.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "gateway/exchange/downstream.h"
#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

// `peer_ip` (canonical text) is in one of the `trusted` networks.
bool is_trusted_proxy(std::string_view peer_ip, const std::vector<conf::IpNetwork>& trusted);

// The client's IP address (canonical text) named by `request`'s X-Forwarded-For fields,
// when `peer_ip` is in `trusted` and the header has one; nullopt otherwise. Entries may
// carry a port ("192.0.2.7:5000", "[2001:db8::7]:5000"); an entry that is no address
// ends the walk (the client is then the trusted address right of it).
std::optional<std::string> forwarded_client(std::string_view peer_ip,
                                            const http::RequestHead& request,
                                            const std::vector<conf::IpNetwork>& trusted);

// `facts` with the client taken from a trusted proxy's X-Forwarded-For, if any: the
// client address becomes that IP (no port), `via` the peer's "ip:port", and `xff_hop`
// the peer's IP (what this hop appends to X-Forwarded-For). One copy, made in place.
DownstreamFacts with_forwarded_client(const DownstreamFacts& facts,
                                      const http::RequestHead& request,
                                      const std::vector<conf::IpNetwork>& trusted);

}  // namespace wsgate::gateway
