#include "gateway/exchange/proxy_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "proxy/codec/http1_parser.h"
#include "proxy/connect/password_hash.h"

namespace wsgate::gateway {
namespace {

using Digest = ProxyAuthState::Digest;
static_assert(sizeof(Digest) == SHA256_DIGEST_LENGTH);

// The client's key in the budget table: its address, IPv6 cut to the /64 (RFC 4291
// 2.5.4: one subnet, usually one host), so one host cannot get a fresh budget per address.
std::string client_key(std::string_view ip) {
  in6_addr six{};
  const std::string text(ip);
  if (inet_pton(AF_INET6, text.c_str(), &six) != 1) return text;
  std::memset(reinterpret_cast<unsigned char*>(&six) + 8, 0, 8);
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, &six, buf, sizeof buf) != nullptr ? std::string(buf) + "/64" : text;
}

Digest cache_key(std::string_view stored, std::string_view user, std::string_view password) {
  Digest d{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::string_view part :
       {stored, std::string_view("\0", 1), user, std::string_view("\0", 1), password})
    EVP_DigestUpdate(ctx, part.data(), part.size());
  EVP_DigestFinal_ex(ctx, d.data(), nullptr);
  EVP_MD_CTX_free(ctx);
  return d;
}

std::string decode_base64(std::string_view text, bool& ok) {
  ok = false;
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4096) return {};
  std::string out(text.size() / 4 * 3, '\0');
  const int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
  if (len < 0) return {};
  std::size_t n = static_cast<std::size_t>(len);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) --n;
  out.resize(n);
  ok = true;
  return out;
}

}  // namespace

std::string dummy_hash(const std::vector<conf::ConnectUser>& users) {
  std::map<unsigned, std::size_t> counts;
  for (const auto& u : users)
    if (const unsigned n = proxy::hash_iterations(u.password_hash); n > 0) ++counts[n];
  unsigned iterations = proxy::kDefaultPbkdf2Iterations;
  std::size_t most = 0;
  for (const auto& [n, count] : counts)  // ascending: ties go to the higher count
    if (count >= most) {
      most = count;
      iterations = n;
    }
  return "pbkdf2-sha256$" + std::to_string(iterations) +
         "$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
}

VerificationBudget& ProxyAuthState::client_budget(std::string_view client_ip) {
  std::string key = client_key(client_ip);
  if (const auto it = client_index_.find(key); it != client_index_.end()) {
    clients_.splice(clients_.end(), clients_, it->second);  // most recently used
    return it->second->second;
  }
  if (clients_.size() >= kClientEntries) {
    client_index_.erase(clients_.front().first);
    clients_.pop_front();
  }
  clients_.emplace_back(key, VerificationBudget(kClientShare, kClientBurstSeconds));
  client_index_.emplace(std::move(key), std::prev(clients_.end()));
  return clients_.back().second;
}

namespace {

ProxyAuthState::Clock::duration thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

ProxyAuthState::Stopwatch ProxyAuthState::start() const {
  return {now(), charge_cpu_time_ ? thread_cpu_time() : Clock::duration{}};
}

ProxyAuthState::Clock::duration ProxyAuthState::elapsed(const Stopwatch& since) const {
  return charge_cpu_time_ ? thread_cpu_time() - since.cpu : now() - since.wall;
}

ProxyAuthState& ProxyAuthState::for_this_thread() {
  // Per worker thread (a connection never changes thread): no lock.
  thread_local ProxyAuthState state;
  return state;
}

bool ProxyAuthState::cached(const Digest& key) const {
  return std::any_of(
      entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(used_),
      [&](const Digest& e) { return CRYPTO_memcmp(e.data(), key.data(), key.size()) == 0; });
}

void ProxyAuthState::remember(const Digest& key) {
  entries_[next_] = key;
  next_ = (next_ + 1) % kCacheEntries;
  used_ = std::min(used_ + 1, kCacheEntries);
}

namespace {

// RFC 9110 15.5.8: a 407 carries Proxy-Authenticate.
ProxyAuthResult denied(std::string reason) {
  return {{}, {407, std::move(reason), {{"Proxy-Authenticate", std::string(kProxyAuthenticate)}}}};
}

// A verification budget is spent: RFC 9110 10.2.3, try again in a second.
ProxyAuthResult busy(std::string reason) {
  return {{}, {503, std::move(reason), {{"Retry-After", "1"}}}};
}

}  // namespace

ProxyAuthResult check_proxy_authorization(const std::vector<conf::ConnectUser>& users,
                                          const std::string_view* header,
                                          std::string_view client_ip, ProxyAuthState& state) {
  if (header == nullptr) return denied("proxy authentication required");
  // RFC 9110 11.4: credentials = auth-scheme [ 1*SP token68 ]; the scheme is
  // case-insensitive.
  const std::string_view value = *header;
  const auto sp = value.find(' ');
  if (sp == std::string_view::npos || !http1::iequals(value.substr(0, sp), "basic"))
    return denied("proxy authentication: only the Basic scheme is supported");
  std::string_view token = value.substr(sp + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  bool decoded = false;
  const std::string pair = decode_base64(token, decoded);
  const auto colon = pair.find(':');
  // RFC 7617 2: user-id ":" password.
  if (!decoded || colon == std::string::npos)
    return denied("proxy authentication: malformed Basic credentials");
  const std::string_view user(pair.data(), colon);
  const std::string_view password = std::string_view(pair).substr(colon + 1);
  const auto it = std::find_if(users.begin(), users.end(),
                               [&](const conf::ConnectUser& u) { return u.name == user; });

  // An unknown user costs one PBKDF2 run of the configured users' usual cost.
  const std::string stored = it != users.end() ? it->password_hash : dummy_hash(users);
  const Digest key = cache_key(stored, user, password);
  if (it != users.end() && state.cached(key)) return {it->name, {}};
  const ProxyAuthState::Stopwatch started = state.start();
  // The client's own budget first: its flood is refused before it reaches the worker's.
  VerificationBudget& client = state.client_budget(client_ip);
  if (!client.may_start(started.wall))
    return busy("too many proxy authentication attempts from this client, retry later");
  if (!state.budget().may_start(started.wall))
    return busy("too many proxy authentication attempts on this worker, retry later");
  const bool matches = proxy::verify_password(stored, password);
  const auto spent = state.elapsed(started);
  client.charge(spent);
  state.budget().charge(spent);
  if (!matches || it == users.end()) return denied("proxy authentication failed");
  state.remember(key);
  return {it->name, {}};
}

bool VerificationBudget::may_start(Clock::time_point now) {
  if (last_ != Clock::time_point{}) {
    const double elapsed = std::max(0.0, std::chrono::duration<double>(now - last_).count());
    credit_ = std::min(burst_, credit_ + elapsed * share_);
  }
  last_ = now;
  return credit_ > 0;
}

void VerificationBudget::charge(Clock::duration spent) {
  credit_ -= std::chrono::duration<double>(spent).count();
}

}  // namespace wsgate::gateway
