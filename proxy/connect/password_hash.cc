#include "proxy/connect/password_hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <optional>
#include <vector>

namespace wsgate::proxy {
namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int len =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::optional<std::vector<unsigned char>> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::vector<unsigned char> out(text.size() / 4 * 3);
  const int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
  if (len < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t n = static_cast<std::size_t>(len);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) --n;
  out.resize(n);
  return out;
}

bool pbkdf2(std::string_view password, const unsigned char* salt, std::size_t salt_len,
            unsigned iterations, unsigned char* out, std::size_t out_len) {
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt,
                           static_cast<int>(salt_len), static_cast<int>(iterations), EVP_sha256(),
                           static_cast<int>(out_len), out) == 1;
}

}  // namespace

std::string hash_password(std::string_view password, unsigned iterations) {
  std::array<unsigned char, kSaltBytes> salt{};
  std::array<unsigned char, kHashBytes> hash{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1 ||
      !pbkdf2(password, salt.data(), salt.size(), iterations, hash.data(), hash.size()))
    return {};
  return std::string(kScheme) + "$" + std::to_string(iterations) + "$" +
         base64(salt.data(), salt.size()) + "$" + base64(hash.data(), hash.size());
}

unsigned hash_iterations(std::string_view stored) {
  if (!stored.starts_with(kScheme) || stored.size() <= kScheme.size() ||
      stored[kScheme.size()] != '$')
    return 0;
  stored.remove_prefix(kScheme.size() + 1);
  const auto d1 = stored.find('$');
  if (d1 == std::string_view::npos) return 0;
  unsigned iterations = 0;
  const auto [rest, ec] = std::from_chars(stored.data(), stored.data() + d1, iterations);
  return ec == std::errc() && rest == stored.data() + d1 ? iterations : 0;
}

bool verify_password(std::string_view stored, std::string_view password) {
  if (!stored.starts_with(kScheme) || stored.size() <= kScheme.size() ||
      stored[kScheme.size()] != '$')
    return false;
  stored.remove_prefix(kScheme.size() + 1);
  const auto d1 = stored.find('$');
  const auto d2 = d1 == std::string_view::npos ? d1 : stored.find('$', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  unsigned iterations = 0;
  const auto [rest, ec] = std::from_chars(stored.data(), stored.data() + d1, iterations);
  if (ec != std::errc() || rest != stored.data() + d1 || iterations == 0) return false;
  const auto salt = unbase64(stored.substr(d1 + 1, d2 - d1 - 1));
  const auto expected = unbase64(stored.substr(d2 + 1));
  if (!salt || !expected || expected->empty() || expected->size() > 64) return false;
  std::array<unsigned char, 64> got{};
  if (!pbkdf2(password, salt->data(), salt->size(), iterations, got.data(), expected->size()))
    return false;
  return CRYPTO_memcmp(got.data(), expected->data(), expected->size()) == 0;
}

}  // namespace wsgate::proxy
