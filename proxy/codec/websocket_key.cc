// Sec-WebSocket-Key validation, Sec-WebSocket-Accept computation and key generation.
// base64 here is our own: a key is exactly 24 canonical characters, which is simpler to
// check directly than through EVP_DecodeBlock (which pads its output and accepts
// non-canonical trailing bits).
#include "proxy/codec/websocket_key.h"

#include <array>
#include <cstddef>
#include <cstdint>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace wsgate::ws {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// RFC 6455 1.3 / 4.2.2: the GUID appended to the key before hashing.
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

constexpr std::size_t kKeyBytes = 16;
constexpr std::size_t kKeyChars = 24;  // 4 * ceil(16 / 3)

// Value of a base64 alphabet character, or -1.
int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string b64_encode(const unsigned char* data, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 0x3f];
    out += kAlphabet[(v >> 12) & 0x3f];
    out += kAlphabet[(v >> 6) & 0x3f];
    out += kAlphabet[v & 0x3f];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{data[i]} << 16;
    out += kAlphabet[(v >> 18) & 0x3f];
    out += kAlphabet[(v >> 12) & 0x3f];
    out += "==";
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 0x3f];
    out += kAlphabet[(v >> 12) & 0x3f];
    out += kAlphabet[(v >> 6) & 0x3f];
    out += '=';
  }
  return out;
}

}  // namespace

// RFC 6455 4.2.1 item 5: base64 of 16 bytes is 22 data characters and "==". The last
// data character carries 2 bits of data and 4 zero bits; anything else there is not
// the canonical encoding of 16 bytes and is refused.
bool is_valid_key(std::string_view key) {
  if (key.size() != kKeyChars || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (b64_value(key[i]) < 0) return false;
  }
  return (b64_value(key[21]) & 0x0f) == 0;
}

// RFC 6455 4.2.2 item 5.4: base64(SHA-1(key + GUID)). Empty only if the digest fails,
// which OpenSSL's built-in SHA-1 does not.
std::string compute_accept(std::string_view key) {
  // EVP_Digest looks SHA-1 up by name and allocates a context each time (OpenSSL 3): 6,000
  // instructions a digest, 8 % of what opening a WebSocket through the gateway cost. Each
  // thread keeps the algorithm and a context.
  struct Sha1 {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    Sha1() = default;
    Sha1(const Sha1&) = delete;
    Sha1& operator=(const Sha1&) = delete;
    ~Sha1() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Sha1 sha1;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  if (sha1.md == nullptr || sha1.ctx == nullptr ||
      EVP_DigestInit_ex2(sha1.ctx, sha1.md, nullptr) != 1 ||
      EVP_DigestUpdate(sha1.ctx, key.data(), key.size()) != 1 ||
      EVP_DigestUpdate(sha1.ctx, kGuid.data(), kGuid.size()) != 1 ||
      EVP_DigestFinal_ex(sha1.ctx, md.data(), &md_len) != 1) {
    return {};
  }
  return b64_encode(md.data(), md_len);
}

// RFC 6455 4.1 item 7: a nonce of 16 random bytes, base64-encoded. Empty if the CSPRNG
// fails (callers check with is_valid_key or treat empty as an internal error).
std::string generate_key() {
  std::array<unsigned char, kKeyBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return {};
  return b64_encode(bytes.data(), bytes.size());
}

}  // namespace wsgate::ws
