// RFC 9110 7.6.1: the hop-by-hop fields an HTTP/1.1 intermediary removes before it
// forwards a message (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade). Proxy-Connection is not in the RFC's list but is sent by
// old clients with the same meaning. The fields a Connection field names are hop-by-hop
// too; the callers check those.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <vector>

#include "proxy/codec/ascii_case.h"
#include "proxy/codec/http1_parser.h"

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

// The options of a head's Connection fields (RFC 9110 7.6.1: the fields they name are
// hop-by-hop too), split into tokens once rather than looked up once per field. The
// views point into `headers`, which must outlive this.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const std::vector<http1::Header>& headers);
  // True when a Connection field lists `field` (case-insensitive).
  bool names(std::string_view field) const;

 private:
  const std::vector<http1::Header>& headers_;
  std::array<std::string_view, 6> tokens_;  // the first ones; more: names() scans
  std::size_t count_ = 0;
};

}  // namespace wsgate::http
