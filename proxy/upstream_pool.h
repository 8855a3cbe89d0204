// The runtime state of every upstream's servers, shared by all workers and the health
// checker: connection counts, the active health check's verdict, passive ejection.
//
// Why shared atomics and not per-worker counts: least_conn and max_connections are about
// what a server holds in total. Per-worker counts would let each of N workers fill a
// server to max_connections (N times the limit) and would balance each worker's share
// separately, blind to the long-lived connections the other workers placed. The cost of
// sharing is one relaxed atomic add when an upstream connection starts and one subtract
// when it ends; the relay (bytes moving) never touches this state, so the hot path stays
// lock-free and contention-free. Health is published the same way: the checker stores a
// flag, workers load it when they pick (no messages to lose or order).
//
// Lifetime: one UpstreamPools per process, made from the config before the workers, held
// by shared_ptr by the Server, every worker's Balancers and the health checker; a
// ServerLease points into it and is always destroyed before the last holder lets go.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace wsgate::proxy {

// Milliseconds on the steady clock (passive ejection deadlines).
std::int64_t steady_now_ms();

struct ServerState {
  explicit ServerState(const conf::UpstreamServer& c) : config(c) {}

  const conf::UpstreamServer config;
  std::atomic<std::uint32_t> active{0};  // connections held or being opened, all workers
  std::atomic<bool> check_up{true};      // the active health check's verdict
  std::atomic<std::uint32_t> consecutive_failures{0};  // passive health
  std::atomic<std::int64_t> ejected_until_ms{0};       // passive ejection; 0: not ejected
  std::atomic<std::int64_t> back_since_ms{0};  // when it last came back (slow start); 0: never

  // Takes a connection slot; false when the server is at max_connections.
  bool try_acquire();
  void release() { active.fetch_sub(1, std::memory_order_relaxed); }
};

// One connection's slot on one server: taken when an attempt starts, given back when the
// attempt fails or, for the attempt that succeeded, when the connection ends.
class ServerLease {
 public:
  ServerLease() = default;
  ServerLease(ServerState* server, std::size_t index) : server_(server), index_(index) {}
  ServerLease(ServerLease&& other) noexcept { *this = std::move(other); }
  ServerLease& operator=(ServerLease&& other) noexcept {
    if (this != &other) {
      reset();
      server_ = std::exchange(other.server_, nullptr);
      index_ = other.index_;
    }
    return *this;
  }
  ServerLease(const ServerLease&) = delete;
  ServerLease& operator=(const ServerLease&) = delete;
  ~ServerLease() { reset(); }

  void reset() {
    if (server_ != nullptr) std::exchange(server_, nullptr)->release();
  }
  explicit operator bool() const { return server_ != nullptr; }
  ServerState* server() const { return server_; }
  std::size_t index() const { return index_; }  // in the pool

 private:
  ServerState* server_ = nullptr;
  std::size_t index_ = 0;
};

class Pool {
 public:
  explicit Pool(const conf::Upstream& upstream);

  const std::string& name() const { return name_; }
  std::size_t size() const { return servers_.size(); }
  ServerState& server(std::size_t i) { return *servers_[i]; }
  const ServerState& server(std::size_t i) const { return *servers_[i]; }

  // Up by the health check and not ejected at `now_ms` (an ejection that has run out
  // ends here, logged once). max_connections is not looked at: see try_acquire.
  bool available(std::size_t i, std::int64_t now_ms);
  // Passive health: a connect/handshake failure (`why` is logged on ejection) or a
  // success. eject_after_failures consecutive failures eject the server for
  // eject_duration; the failure count starts again afterwards. Returns true when this
  // failure ejected the server.
  bool record_failure(std::size_t i, std::string_view why, std::int64_t now_ms);
  void record_success(std::size_t i);
  // The server came back (health check up, or its ejection ended) at `now_ms`.
  void mark_back(std::size_t i, std::int64_t now_ms);
  // Its weight for the balancers now, in units of 1/kWeightScale: the configured weight,
  // ramped linearly from 10% to 100% during slow_start after the server came back.
  static constexpr std::uint32_t kWeightScale = 100;
  std::uint32_t effective_weight(std::size_t i, std::int64_t now_ms) const;
  // For a 503: every server and why it cannot take a connection now.
  std::string describe_unavailable(std::int64_t now_ms) const;

 private:
  std::string name_;
  unsigned eject_after_failures_;
  std::int64_t eject_ms_;
  std::int64_t slow_start_ms_;
  std::vector<std::unique_ptr<ServerState>> servers_;  // atomics do not move
};

class UpstreamPools {
 public:
  explicit UpstreamPools(const conf::Config& config);
  Pool* find(std::string_view upstream_name);
  std::size_t size() const { return pools_.size(); }
  Pool& at(std::size_t i) { return *pools_[i]; }

 private:
  std::vector<std::unique_ptr<Pool>> pools_;  // in config order
};

}  // namespace wsgate::proxy
