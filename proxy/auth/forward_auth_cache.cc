#include "proxy/auth/forward_auth_cache.h"

#include <openssl/evp.h>

#include <cstring>
#include <string_view>
#include <utility>

namespace wsgate::proxy {
namespace {

// One digest input, built from length-prefixed parts so that ("ab", "c") and ("a", "bc")
// differ.
class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void add(std::string_view part) {
    add_number(part.size());
    EVP_DigestUpdate(ctx_, part.data(), part.size());
  }
  void add_number(std::uint64_t n) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(n >> (8 * i));
    EVP_DigestUpdate(ctx_, b, sizeof(b));
  }
  ForwardAuthCacheKey finish() {
    ForwardAuthCacheKey key{};
    EVP_DigestFinal_ex(ctx_, key.data(), nullptr);
    return key;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// What an entry costs: its strings and a fixed share for the list, index and allocations.
std::size_t cost(const ForwardAuthVerdict& v) {
  std::size_t n = 256 + v.body.size() + v.reason.size();
  for (const http::Field& f : v.upstream_fields) n += 64 + f.name.size() + f.value.size();
  for (const auto& [name, value] : v.client_fields) n += 64 + name.size() + value.size();
  return n;
}

// Everything of a route's [route.auth] that can change a decision, as one string (no
// secret in it: names and settings from the config file).
std::string scope_of(const conf::Route& route) {
  const conf::ForwardAuth& f = route.auth.forward;
  std::string s;
  const auto add = [&s](std::string_view part) {
    s.append(std::to_string(part.size())).append(":").append(part);
  };
  add(route.name);
  add(f.upstream);
  add(f.path);
  for (const auto* names : {&f.request_headers, &f.response_headers, &f.cache_key}) {
    s.append("[");
    for (const std::string& n : *names) add(n);
    s.append("]");
  }
  return s;
}

}  // namespace

ForwardAuthCacheKey forward_auth_cache_key(const conf::ForwardAuth& forward,
                                           const http::RequestHead& request) {
  Digest d;
  d.add_number(forward.cache_key.size());
  for (const std::string& name : forward.cache_key) {
    d.add(name);
    d.add_number(request.count(name));
    for (const http::Field& f : request.fields)
      if (http::iequals(f.name, name)) d.add(f.value);
  }
  return d.finish();
}

std::size_t ForwardAuthCache::KeyHash::operator()(const ForwardAuthCacheKey& k) const {
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof(h));  // a SHA-256 digest is uniform already
  return h;
}

std::optional<ForwardAuthVerdict> ForwardAuthCache::find(const ForwardAuthCacheKey& key,
                                                         Clock::time_point now) {
  last_used_ = now;
  const auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  const List::iterator it = found->second;
  if (it->expires <= now) {
    erase(it);
    return std::nullopt;
  }
  entries_.splice(entries_.begin(), entries_, it);
  ForwardAuthVerdict v = it->verdict;
  v.cached = true;
  return v;
}

void ForwardAuthCache::insert(const ForwardAuthCacheKey& key, const ForwardAuthVerdict& verdict,
                              Clock::time_point now, conf::Duration ttl) {
  last_used_ = now;
  if (verdict.kind == ForwardAuthVerdict::Kind::Failed || verdict.no_store || ttl.count() <= 0)
    return;
  if (const auto found = index_.find(key); found != index_.end()) erase(found->second);
  const std::size_t bytes = cost(verdict);
  if (bytes > max_bytes_ || max_entries_ == 0) return;
  entries_.push_front(Entry{key, verdict, now + ttl, bytes});
  entries_.front().verdict.cached = false;
  index_.emplace(key, entries_.begin());
  bytes_ += bytes;
  if (ttl > longest_ttl_) longest_ttl_ = ttl;
  while (entries_.size() > max_entries_ || bytes_ > max_bytes_) erase(std::prev(entries_.end()));
}

void ForwardAuthCache::erase(List::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->key);
  entries_.erase(it);
}

ForwardAuthCache& ForwardAuthCaches::for_route(const conf::Route& route, Clock::time_point now) {
  std::string scope = scope_of(route);
  const std::size_t max_entries = route.auth.forward.cache_entries;
  if (const auto found = caches_.find(scope); found != caches_.end()) {
    found->second->set_max_entries(max_entries);
    return *found->second;
  }
  // A new scope (first use, or a reload changed the route's auth): drop the scopes none of
  // whose entries can still be served, then the least recently used beyond kMaxScopes.
  std::erase_if(caches_, [now](const auto& kv) {
    return now - kv.second->last_used() > kv.second->longest_ttl();
  });
  while (caches_.size() >= kMaxScopes) {
    auto oldest = caches_.begin();
    for (auto it = caches_.begin(); it != caches_.end(); ++it)
      if (it->second->last_used() < oldest->second->last_used()) oldest = it;
    caches_.erase(oldest);
  }
  auto cache = std::make_unique<ForwardAuthCache>(max_entries);
  ForwardAuthCache& ref = *cache;
  caches_.emplace(std::move(scope), std::move(cache));
  return ref;
}

}  // namespace wsgate::proxy
