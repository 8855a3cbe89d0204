#include "proxy/codec/proxy_protocol_writer.h"

#include <arpa/inet.h>

#include <cstring>

namespace wsgate::proxy_protocol {
namespace {

// Spec 2.2: the v2 signature, then version 2 with the command in the low nibble.
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr uint8_t kV2Local = 0x20;
constexpr uint8_t kV2Proxy = 0x21;
constexpr uint8_t kTcp4 = 0x11;  // AF_INET, STREAM
constexpr uint8_t kTcp6 = 0x21;  // AF_INET6, STREAM

// RFC 4291 2.5.5.2: the IPv4-mapped IPv6 form of an IPv4 endpoint.
Endpoint as_inet6(const Endpoint& e) {
  if (e.family == Endpoint::Family::Inet6) return e;
  Endpoint out;
  out.family = Endpoint::Family::Inet6;
  out.port = e.port;
  out.address[10] = out.address[11] = 0xff;
  std::memcpy(out.address.data() + 12, e.address.data(), 4);
  return out;
}

std::string address_text(const Endpoint& e) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.family == Endpoint::Family::Inet ? AF_INET : AF_INET6, e.address.data(), text,
            sizeof(text));
  return text;
}

void put_u16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

}  // namespace

std::optional<Endpoint> endpoint(std::string_view ip, uint16_t port) {
  const std::string text(ip);
  Endpoint e;
  e.port = port;
  if (inet_pton(AF_INET, text.c_str(), e.address.data()) == 1) {
    e.family = Endpoint::Family::Inet;
    return e;
  }
  if (inet_pton(AF_INET6, text.c_str(), e.address.data()) == 1) {
    e.family = Endpoint::Family::Inet6;
    return e;
  }
  return std::nullopt;
}

std::string encode_local(Version version) {
  if (version == Version::V1) return "PROXY UNKNOWN\r\n";
  std::string out(kV2Signature);
  out += static_cast<char>(kV2Local);
  out += '\0';  // AF_UNSPEC, UNSPEC
  put_u16(out, 0);
  return out;
}

std::string encode(Version version, const Endpoint& source, const Endpoint& destination) {
  if (source.family == Endpoint::Family::Unspecified ||
      destination.family == Endpoint::Family::Unspecified)
    return encode_local(version);
  Endpoint src = source;
  Endpoint dst = destination;
  if (src.family != dst.family) {
    src = as_inet6(src);
    dst = as_inet6(dst);
  }
  const bool v4 = src.family == Endpoint::Family::Inet;
  if (version == Version::V1) {
    // Spec 2.1: "PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n", at most 107 bytes.
    return std::string("PROXY ") + (v4 ? "TCP4 " : "TCP6 ") + address_text(src) + ' ' +
           address_text(dst) + ' ' + std::to_string(src.port) + ' ' + std::to_string(dst.port) +
           "\r\n";
  }
  // Spec 2.2: addresses (source, destination), then ports, in network byte order.
  const std::size_t n = v4 ? 4 : 16;
  std::string out(kV2Signature);
  out += static_cast<char>(kV2Proxy);
  out += static_cast<char>(v4 ? kTcp4 : kTcp6);
  put_u16(out, static_cast<uint16_t>(2 * n + 4));
  out.append(reinterpret_cast<const char*>(src.address.data()), n);
  out.append(reinterpret_cast<const char*>(dst.address.data()), n);
  put_u16(out, src.port);
  put_u16(out, dst.port);
  return out;
}

}  // namespace wsgate::proxy_protocol
