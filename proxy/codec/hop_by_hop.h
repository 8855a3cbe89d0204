// RFC 9110 7.6.1: the hop-by-hop fields an HTTP/1.1 intermediary removes before it
// forwards a message (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade). Proxy-Connection is not in the RFC's list but is sent by
// old clients with the same meaning. The fields a Connection field names are hop-by-hop
// too; the callers check those.
#pragma once

#include <string_view>

#include "proxy/codec/ascii_case.h"

namespace wsgate::http {

// By length first: it runs for every field of every forwarded head, and most names
// have no hop-by-hop name of their length.
constexpr bool is_hop_by_hop_name(std::string_view name) {
  switch (name.size()) {
    case 2:
      return ascii::iequals(name, "te");
    case 7:
      return ascii::iequals(name, "trailer") || ascii::iequals(name, "upgrade");
    case 10:
      return ascii::iequals(name, "connection") || ascii::iequals(name, "keep-alive");
    case 16:
      return ascii::iequals(name, "proxy-connection");
    case 17:
      return ascii::iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

}  // namespace wsgate::http
