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
// Lifetime: one UpstreamPools per published config, made from it before the workers see
// it, held by shared_ptr by the Server and by every worker's generation of that config
// (gateway/worker.h). A Pool keeps a reference to its conf::Upstream: whoever holds the
// pools also holds their config (a worker generation holds both).
//
// Reload (gateway/reload.cc): the new config gets new UpstreamPools built with the old
// ones as `previous`. A server that stays in its upstream (same upstream name, same
// address text) carries its state over: the very same ServerState when its options and
// place are unchanged, so connection counts, health and ejection simply continue;
// otherwise a successor that copies the health and ejection and counts the connections
// still held on its predecessor (ServerState::predecessor), so least_conn and
// max_connections keep seeing the connections that live on.
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
  // The successor of `before` across a reload that changed the server's options (weight,
  // max_connections, backup) or its place in the list: health, ejection and transition
  // counts copied, connections still counted on `before`.
  ServerState(const conf::UpstreamServer& c, std::size_t index,
              std::shared_ptr<ServerState> before);

  // For a member found by DNS: host is its address, name the configured host name (for
  // TLS), text "address:port", the rest (weight, max_connections, backup) as configured.
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

  // The state this one replaced on a reload (see the constructor above), or null. The
  // connections opened before that reload hold their leases on it and release them
  // there; while they live they count for this server too. Never changed after
  // construction. A chain only grows when reloads keep changing one server's options.
  const std::shared_ptr<ServerState> predecessor;

  // Connections on this server: its own plus those still held on its predecessors.
  std::uint32_t connections() const {
    return active.load(std::memory_order_relaxed) + (predecessor ? predecessor->connections() : 0);
  }
  // Of those, the ones the gateway is closing (see `closing`).
  std::uint32_t closing_connections() const {
    return closing.load(std::memory_order_relaxed) +
           (predecessor ? predecessor->closing_connections() : 0);
  }
  // `lease_server` (a connection's ServerLease::server()) is this server, or one it
  // replaced on a reload: the connection is on this server.
  bool holds(const ServerState* lease_server) const {
    for (const ServerState* s = this; s != nullptr; s = s->predecessor.get())
      if (s == lease_server) return true;
    return false;
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
  const ServerPtr& server_ptr() const { return server_; }

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
  // `previous`: the pool of the same name in the config being replaced (reload), whose
  // servers' state carries over (see the top of this file); its config must still be
  // alive during this call.
  explicit Pool(const conf::Upstream& upstream, const Pool* previous = nullptr);

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
  // The members of this (old) pool that configured server `s` of a new config, at place
  // `index`, takes over: the same states when nothing about them changed, else successors.
  std::vector<ServerPtr> carried_members(const conf::UpstreamServer& s, std::size_t index,
                                         bool resolves) const;

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
  // `config` must outlive the pools. `previous` (reload): the pools of the config being
  // replaced; servers that stay carry their state over (Pool's constructor).
  explicit UpstreamPools(const conf::Config& config, const UpstreamPools* previous = nullptr);
  Pool* find(std::string_view upstream_name);
  std::size_t size() const { return pools_.size(); }
  Pool& at(std::size_t i) { return *pools_[i]; }

 private:
  std::vector<std::unique_ptr<Pool>> pools_;  // in config order
};

}  // namespace wsgate::proxy
