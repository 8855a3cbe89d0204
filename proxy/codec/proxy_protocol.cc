#include "proxy/codec/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace wsgate::proxy_protocol {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
// Spec 2.2: the v2 signature, twelve bytes no HTTP request, TLS record or v1 line starts with.
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t kV2FixedLength = 16;

// v2 TLV types (spec 2.2.1, 2.2.5).
constexpr uint8_t kTlvAlpn = 0x01;
constexpr uint8_t kTlvAuthority = 0x02;
constexpr uint8_t kTlvSsl = 0x20;
constexpr uint8_t kSubTlvSslVersion = 0x21;
constexpr uint8_t kClientSsl = 0x01;

Result error(std::string why) {
  Result r;
  r.state = State::Error;
  r.error = std::move(why);
  return r;
}

bool is_prefix_of(std::string_view bytes, std::string_view whole) {
  return whole.substr(0, std::min(bytes.size(), whole.size())) ==
         bytes.substr(0, std::min(bytes.size(), whole.size()));
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string_view next_field(std::string_view& line) {
  const auto space = line.find(' ');
  const std::string_view field = line.substr(0, space);
  line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  return field;
}

// Spec 2.1: a port is a decimal number 0..65535, written without leading zeros.
bool parse_port(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

bool parse_v1_address(std::string_view text, Endpoint::Family family, uint16_t port,
                      Endpoint* out) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return false;
  const std::string s(text);
  out->family = family;
  out->port = port;
  const int af = family == Endpoint::Family::Inet ? AF_INET : AF_INET6;
  return inet_pton(af, s.c_str(), out->address.data()) == 1;
}

// Spec 2.1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF, or
// "PROXY UNKNOWN" followed by anything up to CRLF.
Result parse_v1(std::string_view bytes) {
  const std::size_t lf = bytes.substr(0, kMaxV1Length).find('\n');
  if (lf == std::string_view::npos) {
    if (bytes.size() >= kMaxV1Length) return error("PROXY v1 header longer than 107 bytes");
    return {};
  }
  if (lf == 0 || bytes[lf - 1] != '\r') return error("PROXY v1 header without CRLF");
  std::string_view line = bytes.substr(kV1Prefix.size(), lf - 1 - kV1Prefix.size());
  if (line.find('\r') != std::string_view::npos) return error("PROXY v1 header with a stray CR");
  Result r;
  r.state = State::Done;
  r.length = lf + 1;
  r.header.version = Version::V1;
  const std::string_view proto = next_field(line);
  if (proto == "UNKNOWN") return r;  // the rest of the line is ignored
  Endpoint::Family family = Endpoint::Family::Inet;
  if (proto == "TCP4") {
    family = Endpoint::Family::Inet;
  } else if (proto == "TCP6") {
    family = Endpoint::Family::Inet6;
  } else {
    return error("PROXY v1 header with an unknown protocol");
  }
  const std::string_view src = next_field(line);
  const std::string_view dst = next_field(line);
  const std::string_view sport = next_field(line);
  const std::string_view dport = line;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  if (!parse_port(sport, &source_port) || !parse_port(dport, &destination_port))
    return error("PROXY v1 header with a bad port");
  if (!parse_v1_address(src, family, source_port, &r.header.source) ||
      !parse_v1_address(dst, family, destination_port, &r.header.destination))
    return error("PROXY v1 header with a bad address");
  r.header.has_addresses = true;
  return r;
}

uint16_t read_u16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// Spec 2.2: source address, destination address, source port, destination port.
void read_v2_endpoints(const unsigned char* a, std::size_t n, Endpoint::Family family, Header* h) {
  h->source.family = h->destination.family = family;
  std::memcpy(h->source.address.data(), a, n);
  std::memcpy(h->destination.address.data(), a + n, n);
  h->source.port = read_u16(a + 2 * n);
  h->destination.port = read_u16(a + 2 * n + 2);
}

// Calls fn(type, value) for each TLV of `bytes`; false when one overruns it.
template <typename Fn>
bool each_tlv(std::string_view bytes, Fn fn) {
  while (!bytes.empty()) {
    if (bytes.size() < 3) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t length = read_u16(p + 1);
    if (bytes.size() < 3 + length) return false;
    fn(p[0], bytes.substr(3, length));
    bytes.remove_prefix(3 + length);
  }
  return true;
}

Result parse_v2(std::string_view bytes) {
  if (bytes.size() < kV2FixedLength) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  // Spec 2.2: the 13th byte is the version (high nibble, 2) and the command (0 LOCAL,
  // 1 PROXY); the 14th the address family and transport; then the length of the rest.
  if ((p[12] >> 4) != 2) return error("PROXY v2 header with an unknown version");
  const int command = p[12] & 0x0f;
  if (command > 1) return error("PROXY v2 header with an unknown command");
  const std::size_t length = kV2FixedLength + read_u16(p + 14);
  if (length > kMaxLength) return error("PROXY v2 header longer than 4096 bytes");
  if (bytes.size() < length) return {};
  Result r;
  r.state = State::Done;
  r.length = length;
  r.header.version = Version::V2;
  // LOCAL: the balancer's own connection (a health check); its addresses stand.
  if (command == 0) return r;
  std::string_view rest = bytes.substr(kV2FixedLength, length - kV2FixedLength);
  const auto* a = reinterpret_cast<const unsigned char*>(rest.data());
  switch (p[13]) {
    case 0x00:  // AF_UNSPEC: unknown to the sender; the connection's addresses stand
      return r;
    case 0x11:  // TCP over IPv4: 4 + 4 address bytes, 2 + 2 port bytes
      if (rest.size() < 12) return error("PROXY v2 header too short for IPv4 addresses");
      read_v2_endpoints(a, 4, Endpoint::Family::Inet, &r.header);
      rest.remove_prefix(12);
      break;
    case 0x21:  // TCP over IPv6: 16 + 16 address bytes, 2 + 2 port bytes
      if (rest.size() < 36) return error("PROXY v2 header too short for IPv6 addresses");
      read_v2_endpoints(a, 16, Endpoint::Family::Inet6, &r.header);
      rest.remove_prefix(36);
      break;
    default:  // UDP, unix sockets, or undefined: not a client of a TCP listener
      return error("PROXY v2 header with an unsupported address family or transport");
  }
  r.header.has_addresses = true;
  Header& h = r.header;
  bool ok = each_tlv(rest, [&](uint8_t type, std::string_view value) {
    if (type == kTlvAlpn && printable(value)) h.alpn = value;
    if (type == kTlvAuthority && printable(value)) h.authority = value;
    if (type == kTlvSsl && value.size() >= 5) {
      // Spec 2.2.5: client flags (1 byte), verify result (4), then sub-TLVs.
      h.ssl = (static_cast<uint8_t>(value[0]) & kClientSsl) != 0;
      const bool sub_ok = each_tlv(value.substr(5), [&](uint8_t sub, std::string_view v) {
        if (sub == kSubTlvSslVersion && printable(v)) h.ssl_version = v;
      });
      if (!sub_ok) h.ssl_version.clear();
    }
  });
  if (!ok) return error("PROXY v2 header with a TLV that overruns it");
  return r;
}

}  // namespace

const char* to_string(Version v) {
  return v == Version::V1 ? "v1" : "v2";
}

Result parse(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (bytes[0] == 'P') {
    if (!is_prefix_of(bytes, kV1Prefix)) return error("not a PROXY protocol header");
    if (bytes.size() < kV1Prefix.size()) return {};
    return parse_v1(bytes);
  }
  if (!is_prefix_of(bytes, kV2Signature)) return error("not a PROXY protocol header");
  return parse_v2(bytes);
}

}  // namespace wsgate::proxy_protocol
