// Process-wide connection limits ([limits]): the total number of open connections, the
// number each client address holds, and a token bucket per client address for new ones.
//
// One job: admit a new connection for a client key and release it when it ends. A
// connection is an accepted TCP connection or an HTTP/2 WebSocket stream; it counts from
// admit() until its Slot is destroyed, whatever the verdict, so a connection that is
// being refused still holds its place while its socket is open.
//
// Threading: shared by every worker (SO_REUSEPORT spreads one client's connections over
// all of them). admit() and Slot release take one striped lock (one per hash set of 8
// clients) and touch one atomic; they run at accept, stream start and close only, never
// while the relay moves bytes.
//
// Memory is fixed: `client_table_size` entries, 8-way set associative, indexed by a keyed
// hash (a random seed per process, so clients cannot aim at one set). A client whose
// entry holds no open connection may be evicted for a new client: completely idle ones
// (bucket full) first, then the least recently seen (its bucket restarts full). When all
// 8 entries of a set hold open connections, a new client of that set is refused
// (Limit::ClientTable): the table fails closed.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "conf/config.h"

namespace wsgate::gateway {

// Which limit refused a connection (metric label values, see to_string).
enum class Limit { None, MaxConnections, PerClient, Rate, ClientTable };
const char* to_string(Limit limit);  // "max_connections", "per_client", "rate", "client_table"

// A client address as the limits see it: an IPv4 address, or an IPv6 address cut to a
// prefix (IPv4-mapped IPv6 addresses are IPv4).
struct ClientKey {
  std::array<uint8_t, 16> bytes{};
  bool v6 = false;
  bool operator==(const ClientKey&) const = default;

  static ClientKey from_sockaddr(const sockaddr* sa, unsigned ipv6_prefix);
  // "192.0.2.1", "2001:db8::1"; nullopt when not an IP address.
  static std::optional<ClientKey> from_ip(std::string_view ip, unsigned ipv6_prefix);
};

class ClientLimits : public std::enable_shared_from_this<ClientLimits> {
 public:
  using Clock = std::chrono::steady_clock;

  // One admitted connection's place in the counts; releases it once, when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept { *this = std::move(other); }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    bool held() const { return owner_ != nullptr; }
    void release();

   private:
    friend class ClientLimits;
    ClientLimits* owner_ = nullptr;
    // Keeps the table alive while this slot is held when the table is shared (a reload
    // that changes [limits] replaces it; connections admitted before release into theirs).
    std::shared_ptr<ClientLimits> keep_;
    int set_ = -1;  // -1: counted in the total only
    int way_ = -1;
  };

  struct Decision {
    Slot slot;  // held whatever the verdict (empty without limits)
    Limit exceeded = Limit::None;
    bool close_now = false;      // more than twice over a count: close without answering
    unsigned retry_after_s = 0;  // for the Retry-After header when refused (>= 1)
    bool refused() const { return exceeded != Limit::None; }
  };

  explicit ClientLimits(const conf::Limits& limits);
  ClientLimits(const ClientLimits&) = delete;
  ClientLimits& operator=(const ClientLimits&) = delete;

  // Counts one new connection of `key` at `now` and says whether a limit refuses it.
  // Checked in this order: max_connections, the client table, max_connections_per_client,
  // then the rate (a refused connection takes no token).
  Decision admit(const ClientKey& key, Clock::time_point now);

  // As built: client_ipv6_prefix and client_table_size never change in a table.
  const conf::Limits& settings() const { return limits_; }
  // A reload changed [limits]: true when this table can take `next` (same IPv6 grouping
  // and table size, and a table exists if per-client limits are on); then update() applies
  // the new numbers to every later admit(), counts kept. Thread-safe.
  bool can_update_to(const conf::Limits& next) const;
  void update(const conf::Limits& next);
  uint64_t open_total() const { return total_.load(std::memory_order_relaxed); }
  // For tests and reports (takes the set's lock).
  unsigned open_for(const ClientKey& key) const;
  std::size_t capacity() const { return sets_count_ * kWays; }

 private:
  static constexpr std::size_t kWays = 8;
  struct Entry {
    ClientKey key;
    bool used = false;
    unsigned open = 0;
    double tokens = 0;
    int64_t refilled_ns = 0;  // when `tokens` was last brought up to date
    int64_t seen_ns = 0;      // last admit
  };
  struct alignas(64) Set {
    mutable std::mutex mutex;
    std::array<Entry, kWays> ways;
  };

  std::size_t set_of(const ClientKey& key) const;
  void refill(Entry& e, int64_t now_ns) const;
  bool idle(const Entry& e, int64_t now_ns) const;
  int find_or_claim(Set& set, const ClientKey& key, int64_t now_ns);
  void release(const Slot& slot);

  const conf::Limits limits_;
  // The numbers a reload may change in place (update()); the rest of limits_ is fixed.
  std::atomic<uint64_t> max_total_;
  std::atomic<unsigned> max_per_client_;
  std::atomic<double> rate_;
  std::atomic<double> burst_;
  const uint64_t seed_;
  std::size_t sets_count_ = 0;  // a power of two
  std::unique_ptr<Set[]> sets_;
  std::atomic<uint64_t> total_{0};
};

}  // namespace wsgate::gateway
