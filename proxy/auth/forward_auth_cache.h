// Forward auth's decision cache ([route.auth] cache_ttl, cache_key, cache_entries): a
// request whose cache_key header fields hold the same values as one decided less than
// cache_ttl ago gets the same verdict without a subrequest.
//
// One ForwardAuthCaches per worker (gateway/worker.h): nothing is shared between threads,
// so a client whose connections land on several workers is asked about once per worker.
// Inside it, one ForwardAuthCache per *auth scope*: the route's name with everything of
// its [route.auth] that can change a decision (the auth upstream, path, request_headers,
// response_headers, cache_key). A reload that changes any of them starts an empty cache;
// a reload that changes nothing keeps the decisions.
//
// Keys are SHA-256 digests of the cache_key fields' values: the credentials themselves are
// never kept, and every key has the same size. Only Allowed and Denied verdicts are kept
// (never Failed, nor an answer with "Cache-Control: no-store"), each for cache_ttl, at most
// cache_entries per scope and kMaxBytes of verdicts (bodies, fields) per scope; the least
// recently used go first.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "proxy/auth/forward_auth.h"
#include "proxy/codec/request_head.h"

namespace wsgate::proxy {

using ForwardAuthCacheKey = std::array<unsigned char, 32>;  // SHA-256

// The digest of the values of `forward.cache_key`'s fields in `request`: for each name in
// order, how many fields have it and each value (length-prefixed, so no two different
// requests share an input). An absent field and an empty one differ.
ForwardAuthCacheKey forward_auth_cache_key(const conf::ForwardAuth& forward,
                                           const http::RequestHead& request);

class ForwardAuthCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxBytes = 8 * 1024 * 1024;

  explicit ForwardAuthCache(std::size_t max_entries, std::size_t max_bytes = kMaxBytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The verdict kept for `key` if it has not expired at `now` (marked `cached`); an
  // expired one is dropped. A hit becomes the most recently used.
  std::optional<ForwardAuthVerdict> find(const ForwardAuthCacheKey& key, Clock::time_point now);
  // Keeps `verdict` (Allowed or Denied, without no_store) until `now + ttl`, replacing
  // what `key` had; then drops the least recently used entries over the bounds. A verdict
  // larger than the byte bound alone is not kept.
  void insert(const ForwardAuthCacheKey& key, const ForwardAuthVerdict& verdict,
              Clock::time_point now, conf::Duration ttl);
  // A reload may change cache_entries: applied at the next insert.
  void set_max_entries(std::size_t n) { max_entries_ = n; }

  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }
  // The last lookup or insert, and the longest ttl any entry got: a scope whose entries
  // have all expired can go.
  Clock::time_point last_used() const { return last_used_; }
  conf::Duration longest_ttl() const { return longest_ttl_; }

 private:
  struct Entry {
    ForwardAuthCacheKey key;
    ForwardAuthVerdict verdict;
    Clock::time_point expires;
    std::size_t bytes = 0;
  };
  struct KeyHash {
    std::size_t operator()(const ForwardAuthCacheKey& k) const;
  };
  using List = std::list<Entry>;  // most recently used first

  void erase(List::iterator it);

  std::size_t max_entries_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  List entries_;
  std::unordered_map<ForwardAuthCacheKey, List::iterator, KeyHash> index_;
  Clock::time_point last_used_{};
  conf::Duration longest_ttl_{0};
};

// The worker's caches, one per auth scope (above).
class ForwardAuthCaches {
 public:
  using Clock = ForwardAuthCache::Clock;
  // Scopes kept at most; beyond, the least recently used scope goes.
  static constexpr std::size_t kMaxScopes = 1024;

  // The cache of `route`'s auth scope (its [route.auth] must be a forward one with a
  // cache_ttl), made on first use. Making one drops the scopes whose entries have all
  // expired (a reload left them behind).
  ForwardAuthCache& for_route(const conf::Route& route, Clock::time_point now);
  std::size_t scopes() const { return caches_.size(); }

 private:
  std::map<std::string, std::unique_ptr<ForwardAuthCache>> caches_;
};

}  // namespace wsgate::proxy
