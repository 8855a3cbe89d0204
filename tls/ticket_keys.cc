#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <ctime>
#include <mutex>

namespace wsgate::tls {
namespace {

struct PeriodKeys {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes{};
  std::array<unsigned char, 32> mac{};
};

const std::array<unsigned char, 32>& process_secret() {
  static std::array<unsigned char, 32> secret{};
  static std::once_flag once;
  std::call_once(once, [] { RAND_bytes(secret.data(), static_cast<int>(secret.size())); });
  return secret;
}

void derive(const char* label, long period, unsigned char* out, std::size_t len) {
  unsigned char input[32];
  const int n = snprintf(reinterpret_cast<char*>(input), sizeof(input), "%s:%ld", label, period);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const auto& secret = process_secret();
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), input,
       static_cast<std::size_t>(n), digest, &digest_len);
  std::memcpy(out, digest, len);
}

PeriodKeys keys_for(long period) {
  PeriodKeys k;
  derive("name", period, k.name.data(), k.name.size());
  derive("aes", period, k.aes.data(), k.aes.size());
  derive("mac", period, k.mac.data(), k.mac.size());
  return k;
}

int set_mac_key(EVP_MAC_CTX* hctx, PeriodKeys& k) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.mac.data(), k.mac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params);
}

int ticket_key_callback(SSL* /*ssl*/, unsigned char key_name[16], unsigned char* iv,
                        EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* hctx, int encrypt) {
  const long now = static_cast<long>(time(nullptr)) / kTicketRotationSeconds;
  if (encrypt != 0) {
    PeriodKeys k = keys_for(now);
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    std::memcpy(key_name, k.name.data(), k.name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1) return -1;
    return set_mac_key(hctx, k) == 1 ? 1 : -1;
  }
  for (long period : {now, now - 1}) {
    PeriodKeys k = keys_for(period);
    if (std::memcmp(key_name, k.name.data(), k.name.size()) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1) return -1;
    if (set_mac_key(hctx, k) != 1) return -1;
    return period == now ? 1 : 2;  // 2: valid, but issue a fresh ticket
  }
  return 0;  // unknown or expired key: full handshake
}

}  // namespace

void enable_rotating_tickets(SSL_CTX* ctx) {
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ticket_key_callback);
  SSL_CTX_set_timeout(ctx, 2 * kTicketRotationSeconds);
}

}  // namespace wsgate::tls
