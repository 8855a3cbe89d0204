// Closes a worker's WebSockets one at a time at planned moments. A drain (SIGTERM, a
// server leaving the pool) or a rebalancing spreads its Closes evenly over a window, so
// the clients do not all reconnect in the same instant: the i-th of n closes at
// i * window / n (spread_offsets_ms). Every worker spreads its own connections, so the
// sum over the workers is even too.
//
// Entries name an exchange by pointer and id; the Worker checks, when one falls due, that
// the exchange still exists (it may have ended meanwhile) before closing it.
// Threading: the worker's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream_pool.h"

namespace wsgate::gateway {

class Exchange;

// Offsets in ms at which n closes start when spread evenly over `spread_ms`: i * spread / n.
// All 0 when spread_ms <= 0.
std::vector<std::int64_t> spread_offsets_ms(std::size_t n, std::int64_t spread_ms);

class CloseSchedule {
 public:
  struct Target {
    Exchange* exchange = nullptr;
    std::uint64_t id = 0;
  };
  // Why a close is sent: the code and reason of the Close frame, and whether it is
  // rebalancing (counted in wsgate_upstream_rebalanced_connections_total).
  struct Close {
    std::uint16_t code = 1001;
    std::string reason;
    bool rebalance = false;
    proxy::ServerPtr server;  // rebalancing: the server shed from
  };
  // `close` runs when an entry falls due; it returns whether a Close was sent.
  using CloseFn = std::function<bool(const Target&, const Close&)>;

  CloseSchedule(event_base* base, CloseFn close);

  // Closes `targets` in their order, spread evenly over `spread` from now; with a zero
  // spread they all close before this returns.
  void add(const std::vector<Target>& targets, const std::shared_ptr<const Close>& close,
           conf::Duration spread);
  std::size_t pending() const { return queue_.size(); }
  // A close of session `id` is waiting (so a second request does not pick it again).
  bool scheduled(std::uint64_t id) const { return ids_.count(id) != 0; }

 private:
  struct Entry {
    std::int64_t due_ms;
    std::uint64_t seq;  // keeps the order of equal due times
    Target target;
    std::shared_ptr<const Close> close;
    bool operator>(const Entry& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq;
    }
  };
  void run_due();
  void arm();

  CloseFn close_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue_;
  std::multiset<std::uint64_t> ids_;  // of the queued entries
  std::uint64_t seq_ = 0;
  Timer timer_;
};

}  // namespace wsgate::gateway
