#include "gateway/exchange/request_id.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

#include "gateway/exchange/forwarded_client.h"

namespace wsgate::gateway {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string generate_request_id() {
  // One generator per worker thread, seeded from the kernel: no lock, no clock.
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }()};
  // Two hex digits per byte from one table: 16 two-byte copies for 128 random bits.
  static constexpr std::array<char, 512> kPairs = [] {
    constexpr char kHex[] = "0123456789abcdef";
    std::array<char, 512> t{};
    for (std::size_t b = 0; b < 256; ++b) {
      t[2 * b] = kHex[b >> 4];
      t[2 * b + 1] = kHex[b & 0xf];
    }
    return t;
  }();
  char id[32];
  for (std::size_t half = 0; half < 2; ++half) {
    uint64_t bits = gen();
    for (std::size_t i = 0; i < 8; ++i, bits >>= 8)
      std::memcpy(id + half * 16 + i * 2, &kPairs[(bits & 0xff) * 2], 2);
  }
  return std::string(id, sizeof id);
}

std::string choose_request_id(std::string_view peer_ip, const http::RequestHead& request,
                              const std::vector<conf::IpNetwork>& trusted) {
  if (const http::Field* f = request.find("x-request-id");
      f != nullptr && valid_request_id(f->value) && is_trusted_proxy(peer_ip, trusted))
    return f->value;
  return generate_request_id();
}

void set_request_id(http::RequestHead& request, std::string_view id) {
  std::erase_if(request.fields,
                [](const http::Field& f) { return http::iequals(f.name, "x-request-id"); });
  request.fields.push_back({"X-Request-Id", std::string(id)});
}

}  // namespace wsgate::gateway
