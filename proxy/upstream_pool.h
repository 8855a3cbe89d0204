// The runtime state of every upstream's servers, shared by all workers, the health
// checker and the resolver: membership, connection counts, the active health check's
// verdict, passive ejection, slow start.
//
// Members. A configured server given as an IP address is one member. A server given as a
// host name, when its upstream has a resolve_interval, becomes one member per address
// the name resolves to, re-resolved periodically (UpstreamResolver): the Pool then
// publishes a new immutable Members set. Members that disappear are only dropped from
// the set, so no new connection picks them; the connections they hold are drained (Close
// 1001 spread over drain_spread, Server::drain_server), each keeping its member's state
// alive through its ServerLease until it ends. A member whose address stays keeps its
// state (counts, health) across updates.
//
// Why shared atomics and not per-worker counts: least_conn and max_connections are about
// what a server holds in total. Per-worker counts would let each of N workers fill a
// server to max_connections (N times the limit) and would balance each worker's share
// separately, blind to the long-lived connections the other workers placed. The cost of
// sharing is one relaxed atomic add when an upstream connection starts and one subtract
// when it ends; the relay (bytes moving) never touches this state, so the hot path stays
// lock-free and contention-free. Health is published the same way: the checker stores a
// flag, workers load it when they pick (no messages to lose or order). The membership
// set is swapped under a mutex, but workers take it only when the generation counter
// (one atomic load per pick) says it changed, i.e. once per DNS change per worker.
//
// Lifetime: one UpstreamPools per process, made from the config before the workers, held
// by shared_ptr by the Server and every worker's Balancers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace wsgate::proxy {

// Milliseconds on the steady clock (passive ejection deadlines, slow start).
std::int64_t steady_now_ms();

struct ServerState {
  ServerState(const conf::UpstreamServer& c, std::size_t index) : config(c), config_index(index) {}

  // For a member found by DNS: host is its address, text "address:port", the rest (weight,
  // max_connections, backup) as configured for the name.
  const conf::UpstreamServer config;
  const std::size_t config_index;        // the configured server it comes from
  std::atomic<std::uint32_t> active{0};  // connections held or being opened, all workers
  std::atomic<bool> check_up{true};      // the active health check's verdict
  std::atomic<std::uint32_t> consecutive_failures{0};  // passive health
  std::atomic<std::int64_t> ejected_until_ms{0};       // passive ejection; 0: not ejected
  std::atomic<std::int64_t> back_since_ms{0};  // when it last came back (slow start); 0: never
  // Health state changes as logged (wsgate_upstream_server_health_transitions_total):
  // the active check's up/down, a passive ejection (down) and its end (up).
  std::atomic<std::uint64_t> transitions_up{0};
  std::atomic<std::uint64_t> transitions_down{0};
  // Connections the gateway told to close (drain, rebalancing, admin) that have not ended
  // yet: the rebalancer counts them as gone already, so a slow close handshake does not
  // make it shed again (ServerLease::mark_closing).
  std::atomic<std::uint32_t> closing{0};
  // Connections shed by rebalancing (wsgate_upstream_rebalanced_connections_total).
  std::atomic<std::uint64_t> rebalanced{0};

  // In rotation now: up by the health check and not ejected (a lapsed ejection counts
  // as over even before a worker notices it).
  bool up(std::int64_t now_ms) const {
    if (!check_up.load(std::memory_order_relaxed)) return false;
    const std::int64_t until = ejected_until_ms.load(std::memory_order_relaxed);
    return until == 0 || now_ms >= until;
  }

  // Takes a connection slot; false when the server is at max_connections.
  bool try_acquire();
  void release() { active.fetch_sub(1, std::memory_order_relaxed); }
};

using ServerPtr = std::shared_ptr<ServerState>;

// One connection's slot on one server: taken when an attempt starts, given back when the
// attempt fails or, for the attempt that succeeded, when the connection ends. It keeps
// the member's state alive after the member left the pool.
class ServerLease {
 public:
  ServerLease() = default;
  explicit ServerLease(ServerPtr server) : server_(std::move(server)) {}
  ServerLease(ServerLease&& other) noexcept
      : server_(std::move(other.server_)), closing_(std::exchange(other.closing_, false)) {}
  ServerLease& operator=(ServerLease&& other) noexcept {
    if (this != &other) {
      reset();
      server_ = std::move(other.server_);
      closing_ = std::exchange(other.closing_, false);
    }
    return *this;
  }
  ServerLease(const ServerLease&) = delete;
  ServerLease& operator=(const ServerLease&) = delete;
  ~ServerLease() { reset(); }

  void reset() {
    if (!server_) return;
    if (std::exchange(closing_, false)) server_->closing.fetch_sub(1, std::memory_order_relaxed);
    std::exchange(server_, nullptr)->release();
  }
  // The gateway is closing this connection: counted in the server's `closing` until the
  // lease ends. Once per lease.
  void mark_closing() {
    if (!server_ || closing_) return;
    closing_ = true;
    server_->closing.fetch_add(1, std::memory_order_relaxed);
  }
  explicit operator bool() const { return server_ != nullptr; }
  ServerState* server() const { return server_.get(); }

 private:
  ServerPtr server_;
  bool closing_ = false;
};

// One published membership: never changed after publication.
struct Members {
  std::uint64_t generation = 0;
  // Ordered by configured server, then by address text: the same on every instance
  // that sees the same DNS answers (the hash balancer builds its table in this order).
  std::vector<ServerPtr> servers;
};

class Pool {
 public:
  explicit Pool(const conf::Upstream& upstream);

  const std::string& name() const { return name_; }
  // Changes whenever members() does; cheap to poll.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const Members> members() const;
  // Convenience for tests and messages: member i of the current set.
  std::size_t size() const { return members()->servers.size(); }
  ServerState& server(std::size_t i) const { return *members()->servers.at(i); }

  // Replaces the members that come from configured server `config_index` by one per
  // address (IP literal text). Members whose address stays keep their state. Returns
  // the addresses added and removed (both empty: nothing changed, nothing published).
  std::pair<std::vector<std::string>, std::vector<std::string>> set_addresses(
      std::size_t config_index, const std::vector<std::string>& addresses);

  // Up by the health check and not ejected at `now_ms` (an ejection that has run out
  // ends here, logged once). max_connections is not looked at: see try_acquire.
  bool available(ServerState& s, std::int64_t now_ms) const;
  // Passive health: a connect/handshake failure (`why` is logged on ejection) or a
  // success. eject_after_failures consecutive failures eject the server for
  // eject_duration; the failure count starts again afterwards. Returns true when this
  // failure ejected the server.
  bool record_failure(ServerState& s, std::string_view why, std::int64_t now_ms) const;
  static void record_success(ServerState& s);
  // The server came back (health check up, or its ejection ended) at `now_ms`.
  static void mark_back(ServerState& s, std::int64_t now_ms);
  // Its weight for the balancers now, in units of 1/kWeightScale: the configured weight,
  // ramped linearly from 10% to 100% during slow_start after the server came back.
  static constexpr std::uint32_t kWeightScale = 100;
  std::uint32_t effective_weight(const ServerState& s, std::int64_t now_ms) const;
  // For a 503: every member (and every name without addresses) and why it cannot take a
  // connection now.
  std::string describe_unavailable(std::int64_t now_ms) const;

 private:
  void publish(std::vector<ServerPtr> servers);  // mutex_ held

  const conf::Upstream& upstream_;
  std::string name_;
  unsigned eject_after_failures_;
  std::int64_t eject_ms_;
  std::int64_t slow_start_ms_;
  mutable std::mutex mutex_;  // guards members_; never taken on the relay path
  std::shared_ptr<const Members> members_;
  std::atomic<std::uint64_t> generation_{0};
};

class UpstreamPools {
 public:
  // `config` must outlive the pools.
  explicit UpstreamPools(const conf::Config& config);
  Pool* find(std::string_view upstream_name);
  std::size_t size() const { return pools_.size(); }
  Pool& at(std::size_t i) { return *pools_[i]; }

 private:
  std::vector<std::unique_ptr<Pool>> pools_;  // in config order
};

}  // namespace wsgate::proxy
