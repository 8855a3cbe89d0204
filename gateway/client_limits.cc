#include "gateway/client_limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>

namespace wsgate::gateway {
namespace {

// A slot frees when one of the client's (or the process's) connections ends, which
// nobody can predict: the client is told to wait a second.
constexpr unsigned kRetryAfterCountS = 1;

// splitmix64's finalizer: a cheap, well-mixing 64-bit hash step.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

ClientKey v4_key(const uint8_t* addr) {
  ClientKey key;
  std::memcpy(key.bytes.data(), addr, 4);
  return key;
}

ClientKey v6_key(const uint8_t* addr, unsigned prefix) {
  // IPv4-mapped (::ffff:a.b.c.d, RFC 4291 2.5.5.2): the IPv4 client it stands for.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(addr, kMapped, sizeof kMapped) == 0) return v4_key(addr + 12);
  ClientKey key;
  key.v6 = true;
  prefix = std::min(prefix, 128u);
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bits = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0;
    const auto mask = static_cast<uint8_t>(bits == 0 ? 0 : 0xff << (8 - bits));
    key.bytes[i] = addr[i] & mask;
  }
  return key;
}

int64_t to_ns(ClientLimits::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

const char* to_string(Limit limit) {
  switch (limit) {
    case Limit::None:
      return "none";
    case Limit::MaxConnections:
      return "max_connections";
    case Limit::PerClient:
      return "per_client";
    case Limit::Rate:
      return "rate";
    case Limit::ClientTable:
      return "client_table";
  }
  return "?";
}

ClientKey ClientKey::from_sockaddr(const sockaddr* sa, unsigned ipv6_prefix) {
  if (sa != nullptr && sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return v4_key(reinterpret_cast<const uint8_t*>(&in->sin_addr));
  }
  if (sa != nullptr && sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return v6_key(in6->sin6_addr.s6_addr, ipv6_prefix);
  }
  return ClientKey{};  // not IP (never on our listeners): one shared key
}

std::optional<ClientKey> ClientKey::from_ip(std::string_view ip, unsigned ipv6_prefix) {
  const std::string text(ip);
  uint8_t addr[16];
  if (inet_pton(AF_INET, text.c_str(), addr) == 1) return v4_key(addr);
  if (inet_pton(AF_INET6, text.c_str(), addr) == 1) return v6_key(addr, ipv6_prefix);
  return std::nullopt;
}

ClientLimits::Slot& ClientLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    keep_ = std::move(other.keep_);
    set_ = std::exchange(other.set_, -1);
    way_ = std::exchange(other.way_, -1);
  }
  return *this;
}

void ClientLimits::Slot::release() {
  if (owner_ == nullptr) return;
  std::exchange(owner_, nullptr)->release(*this);
  set_ = -1;
  way_ = -1;
  keep_.reset();  // last: the table may go with it
}

ClientLimits::ClientLimits(const conf::Limits& limits)
    : limits_(limits),
      max_total_(limits.max_connections),
      max_per_client_(limits.max_connections_per_client),
      rate_(limits.new_connections_per_second_per_client),
      burst_(static_cast<double>(limits.new_connections_burst)),
      seed_(std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32)) {
  if (limits_.per_client()) {
    sets_count_ = 1;
    while (sets_count_ * kWays < limits_.client_table_size) sets_count_ *= 2;
    sets_ = std::make_unique<Set[]>(sets_count_);
  }
}

std::size_t ClientLimits::set_of(const ClientKey& key) const {
  uint64_t lo = 0;
  uint64_t hi = 0;
  std::memcpy(&lo, key.bytes.data(), 8);
  std::memcpy(&hi, key.bytes.data() + 8, 8);
  const uint64_t h = mix(mix(seed_ ^ lo) ^ hi ^ (key.v6 ? 1 : 0));
  return static_cast<std::size_t>(h & (sets_count_ - 1));
}

void ClientLimits::refill(Entry& e, int64_t now_ns) const {
  const double rate = rate_.load(std::memory_order_relaxed);
  if (rate > 0 && now_ns > e.refilled_ns)
    e.tokens = std::min(burst_.load(std::memory_order_relaxed),
                        e.tokens + rate * static_cast<double>(now_ns - e.refilled_ns) / 1e9);
  e.refilled_ns = std::max(e.refilled_ns, now_ns);
}

bool ClientLimits::idle(const Entry& e, int64_t now_ns) const {
  if (e.open != 0) return false;
  Entry copy = e;
  refill(copy, now_ns);
  return rate_.load(std::memory_order_relaxed) == 0 ||
         copy.tokens >= burst_.load(std::memory_order_relaxed);
}

int ClientLimits::find_or_claim(Set& set, const ClientKey& key, int64_t now_ns) {
  for (std::size_t i = 0; i < kWays; ++i)
    if (set.ways[i].used && set.ways[i].key == key) return static_cast<int>(i);
  int victim = -1;
  int victim_rank = 3;  // 0 unused, 1 idle, 2 no open connection; lower is better
  for (std::size_t i = 0; i < kWays; ++i) {
    const Entry& e = set.ways[i];
    int rank = 3;
    if (!e.used) {
      rank = 0;
    } else if (idle(e, now_ns)) {
      rank = 1;
    } else if (e.open == 0) {
      rank = 2;
    }
    if (rank < victim_rank ||
        (rank == victim_rank && rank < 3 && e.seen_ns < set.ways[victim].seen_ns)) {
      victim = static_cast<int>(i);
      victim_rank = rank;
    }
  }
  if (victim < 0) return -1;
  Entry& e = set.ways[victim];
  e = Entry{};
  e.key = key;
  e.used = true;
  e.tokens = burst_.load(std::memory_order_relaxed);
  e.refilled_ns = now_ns;
  return victim;
}

ClientLimits::Decision ClientLimits::admit(const ClientKey& key, Clock::time_point now) {
  Decision d;
  const uint64_t total = total_.fetch_add(1, std::memory_order_relaxed) + 1;
  d.slot.owner_ = this;
  d.slot.keep_ = weak_from_this().lock();  // null for a table not owned by a shared_ptr
  const uint64_t max_total = max_total_.load(std::memory_order_relaxed);
  const unsigned per_client = max_per_client_.load(std::memory_order_relaxed);
  const double rate = rate_.load(std::memory_order_relaxed);
  if (max_total > 0 && total > max_total) {
    d.exceeded = Limit::MaxConnections;
    d.close_now = total > 2 * max_total;
    d.retry_after_s = kRetryAfterCountS;
    return d;  // not counted per client: it never gets that far
  }
  if (!sets_ || (per_client == 0 && rate == 0)) return d;
  const int64_t now_ns = to_ns(now);
  const std::size_t set_index = set_of(key);
  Set& set = sets_[set_index];
  std::lock_guard<std::mutex> lock(set.mutex);
  const int way = find_or_claim(set, key, now_ns);
  if (way < 0) {
    d.exceeded = Limit::ClientTable;
    d.retry_after_s = kRetryAfterCountS;
    return d;
  }
  Entry& e = set.ways[static_cast<std::size_t>(way)];
  e.open++;
  e.seen_ns = now_ns;
  d.slot.set_ = static_cast<int>(set_index);
  d.slot.way_ = way;
  if (per_client > 0 && e.open > per_client) {
    d.exceeded = Limit::PerClient;
    d.close_now = e.open > 2 * per_client;
    d.retry_after_s = kRetryAfterCountS;
    return d;
  }
  if (rate > 0) {
    refill(e, now_ns);
    if (e.tokens >= 1) {
      e.tokens -= 1;
    } else {
      d.exceeded = Limit::Rate;
      // Seconds until the next token, rounded up (Retry-After takes whole seconds).
      d.retry_after_s = static_cast<unsigned>(std::max(1.0, std::ceil((1 - e.tokens) / rate)));
    }
  }
  return d;
}

bool ClientLimits::can_update_to(const conf::Limits& next) const {
  return next.client_ipv6_prefix == limits_.client_ipv6_prefix &&
         next.client_table_size == limits_.client_table_size && (sets_ || !next.per_client());
}

void ClientLimits::update(const conf::Limits& next) {
  max_total_.store(next.max_connections, std::memory_order_relaxed);
  max_per_client_.store(next.max_connections_per_client, std::memory_order_relaxed);
  rate_.store(next.new_connections_per_second_per_client, std::memory_order_relaxed);
  burst_.store(static_cast<double>(next.new_connections_burst), std::memory_order_relaxed);
}

void ClientLimits::release(const Slot& slot) {
  total_.fetch_sub(1, std::memory_order_relaxed);
  if (slot.set_ < 0) return;
  Set& set = sets_[static_cast<std::size_t>(slot.set_)];
  std::lock_guard<std::mutex> lock(set.mutex);
  Entry& e = set.ways[static_cast<std::size_t>(slot.way_)];
  if (e.open > 0) e.open--;
}

unsigned ClientLimits::open_for(const ClientKey& key) const {
  if (!sets_) return 0;
  const Set& set = sets_[set_of(key)];
  std::lock_guard<std::mutex> lock(set.mutex);
  for (const Entry& e : set.ways)
    if (e.used && e.key == key) return e.open;
  return 0;
}

}  // namespace wsgate::gateway
