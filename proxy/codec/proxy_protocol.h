// The PROXY protocol header (HAProxy's "The PROXY protocol", versions 1 and 2), which an
// L4 load balancer sends before the client's first byte to say whom the connection is
// really from. A pure codec: bytes in, a Header out, no I/O (the reader that takes the
// bytes off the socket before TLS is gateway/proxy_header_reader.cc).
//
// parse() looks at the bytes received so far, always from the connection's first byte:
//   NeedMore: every byte seen belongs to a header that is not complete yet (so a reader
//             may take them all off the socket without eating the client's own bytes);
//   Done:     the header is the first `length` bytes; what follows is the client's;
//   Error:    not a PROXY header, or a broken one (`error` says why, one line).
// A decision other than NeedMore is final: more bytes never change it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgate::proxy_protocol {

// v1: 107 bytes at most, CRLF included (spec 2.1). v2: 16 bytes plus up to 65535 of
// addresses and TLVs; we take at most kMaxLength in all (addresses and a few TLVs from a
// balancer need a few hundred bytes).
constexpr std::size_t kMaxV1Length = 107;
constexpr std::size_t kMaxLength = 4096;

enum class Version { V1, V2 };
const char* to_string(Version v);

// One end of the proxied connection.
struct Endpoint {
  enum class Family { Unspecified, Inet, Inet6 };
  Family family = Family::Unspecified;
  std::array<uint8_t, 16> address{};  // network byte order; IPv4 in the first 4 bytes
  uint16_t port = 0;
};

struct Header {
  Version version = Version::V1;
  // False: LOCAL (v2, a health check by the balancer itself), UNKNOWN (v1) or an
  // unspecified family (v2): the connection's own addresses stand.
  bool has_addresses = false;
  Endpoint source;  // the client, when has_addresses (Inet or Inet6)
  Endpoint destination;
  // v2 TLVs kept (spec 2.2.1), printable ASCII only (else left empty): what the balancer
  // saw of the client's TLS.
  std::string authority;    // PP2_TYPE_AUTHORITY: the SNI host name
  std::string alpn;         // PP2_TYPE_ALPN: the protocol chosen
  bool ssl = false;         // PP2_TYPE_SSL present with PP2_CLIENT_SSL set
  std::string ssl_version;  // PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3"
};

enum class State { NeedMore, Done, Error };

struct Result {
  State state = State::NeedMore;
  std::size_t length = 0;  // Done: the header's size in bytes
  Header header;           // Done
  std::string error;       // Error: why, one line
};

Result parse(std::string_view bytes);

}  // namespace wsgate::proxy_protocol
