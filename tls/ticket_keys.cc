#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>

namespace wsgate::tls {

struct PeriodKeys {
  long period = 0;
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes{};
  std::array<unsigned char, 32> mac{};
};

class TicketKeyRing {
 public:
  // The keys of `period`, made from fresh randomness when first asked for. Keys older
  // than the previous period are erased (and wiped) on the way.
  std::optional<PeriodKeys> current(long period) {
    std::lock_guard lock(mu_);
    forget_before(period - 1);
    for (const auto& k : keys_)
      if (k && k->period == period) return *k;
    PeriodKeys k;
    k.period = period;
    if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 ||
        RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1 ||
        RAND_bytes(k.mac.data(), static_cast<int>(k.mac.size())) != 1)
      return std::nullopt;
    keys_[period & 1] = k;  // the slot of period - 2, already forgotten
    return k;
  }

  // The keys named `name`, if they belong to `period` or the one before.
  std::optional<PeriodKeys> find(long period, const unsigned char* name) {
    std::lock_guard lock(mu_);
    forget_before(period - 1);
    for (const auto& k : keys_)
      if (k && std::memcmp(k->name.data(), name, k->name.size()) == 0) return *k;
    return std::nullopt;
  }

  ~TicketKeyRing() {
    for (auto& k : keys_)
      if (k) OPENSSL_cleanse(&*k, sizeof(*k));
  }

 private:
  void forget_before(long oldest) {
    for (auto& k : keys_) {
      if (k && k->period < oldest) {
        OPENSSL_cleanse(&*k, sizeof(*k));
        k.reset();
      }
    }
  }

  std::mutex mu_;
  std::optional<PeriodKeys> keys_[2];  // at most the current and the previous period
};

namespace {

std::mutex registry_mu;
std::map<ResumptionScope, std::weak_ptr<TicketKeyRing>>& registry() {
  static std::map<ResumptionScope, std::weak_ptr<TicketKeyRing>> rings;
  return rings;
}

int set_mac_key(EVP_MAC_CTX* hctx, PeriodKeys& k) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.mac.data(), k.mac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params);
}

int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int ticket_key_callback(SSL* ssl, unsigned char key_name[16], unsigned char* iv,
                        EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* hctx, int encrypt) {
  // After an SNI switch this is the chosen SSL_CTX; every context of a scope has its ring.
  auto* ring = static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (ring == nullptr) return encrypt != 0 ? -1 : 0;
  const long now = static_cast<long>(time(nullptr)) / kTicketRotationSeconds;
  if (encrypt != 0) {
    std::optional<PeriodKeys> k = ring->current(now);
    if (!k || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    std::memcpy(key_name, k->name.data(), k->name.size());
    const bool ok =
        EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k->aes.data(), iv) == 1 &&
        set_mac_key(hctx, *k) == 1;
    OPENSSL_cleanse(&*k, sizeof(*k));
    return ok ? 1 : -1;
  }
  std::optional<PeriodKeys> k = ring->find(now, key_name);
  if (!k) return 0;  // another scope's, or an expired key: full handshake
  const bool ok = EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k->aes.data(), iv) == 1 &&
                  set_mac_key(hctx, *k) == 1;
  const bool renew = k->period != now;
  OPENSSL_cleanse(&*k, sizeof(*k));
  if (!ok) return -1;
  return renew ? 2 : 1;  // 2: valid, but issue a fresh ticket
}

}  // namespace

std::shared_ptr<TicketKeyRing> ticket_key_ring(const ResumptionScope& scope) {
  std::lock_guard lock(registry_mu);
  auto& rings = registry();
  for (auto it = rings.begin(); it != rings.end();)  // contexts gone: their rings too
    it = it->second.expired() ? rings.erase(it) : std::next(it);
  if (auto ring = rings[scope].lock()) return ring;
  auto ring = std::make_shared<TicketKeyRing>();
  rings[scope] = ring;
  return ring;
}

void enable_rotating_tickets(SSL_CTX* ctx, TicketKeyRing* ring) {
  SSL_CTX_set_ex_data(ctx, ring_index(), ring);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ticket_key_callback);
  SSL_CTX_set_timeout(ctx, 2 * kTicketRotationSeconds);
}

}  // namespace wsgate::tls
