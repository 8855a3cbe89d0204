// Picks the servers one connection tries, in order, for one upstream.
//
// One Balancers object per worker, holding one UpstreamBalancer per upstream: the
// balancer algorithms' own state (round-robin positions, random generators, the Maglev
// table) is the worker's, so picking takes no lock. What all workers share (membership,
// connection counts, health, ejection) lives in the Pool (upstream_pool.h): counts and
// health are read when picking; a new membership (DNS) is noticed by its generation
// number and the worker's balancers are rebuilt for it.
//
// A connection's ServerSelection asks for one server per attempt: primaries first; the
// backup servers only when no primary can take it; never a server it already tried;
// at most 1 + retries attempts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "metrics/worker_metrics.h"
#include "proxy/codec/request_head.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::proxy {

class UpstreamBalancer {
 public:
  // `metrics`: the worker's (may be null), for the upstream connect counts.
  UpstreamBalancer(const conf::Upstream& upstream, Pool& pool, std::uint64_t seed,
                   metrics::WorkerMetrics* metrics = nullptr);

  Pool& pool() { return pool_; }
  metrics::WorkerMetrics* metrics() const { return metrics_; }
  const conf::Upstream& upstream() const { return upstream_; }
  // A server that is available, not in `tried` and below max_connections, with its
  // connection slot taken; an empty lease when there is none.
  ServerLease pick(std::uint64_t key_hash, const std::vector<const ServerState*>& tried,
                   std::int64_t now_ms);
  // The server whose affinity value (proxy/upstream/affinity.h) is `value`, if it is a
  // member, available and below max_connections, with its slot taken; else empty.
  ServerLease pick_affine(std::string_view value, std::int64_t now_ms);

 private:
  struct Group {
    std::unique_ptr<LoadBalancer> lb;
    std::vector<ServerPtr> servers;     // by member index
    std::vector<std::string> affinity;  // affinity_value of each server (with a cookie)
  };
  ServerLease acquire_if_eligible(const ServerPtr& s, std::int64_t now_ms);
  void rebuild();  // for the pool's current members
  ServerLease pick_in(Group& group, std::uint64_t key_hash,
                      const std::vector<const ServerState*>& tried, std::int64_t now_ms);

  const conf::Upstream& upstream_;
  Pool& pool_;
  std::uint64_t seed_;
  metrics::WorkerMetrics* metrics_;
  std::uint64_t generation_ = 0;  // of the members the groups were built for
  Group primary_, backup_;
  std::vector<MemberLoad> loads_;  // scratch, reused
};

// The attempts of one connection. Move-only; used on one worker thread.
// A response status that says the server itself failed as a gateway or is unavailable
// (RFC 9110 15.6.3-15.6.5: 502, 503, 504; Envoy's "consecutive gateway failures"):
// passive health counts it like a refused connection. Any other status is a success.
bool gateway_failure(int status);

class ServerSelection {
 public:
  ServerSelection() = default;
  // `affinity`: the request's affinity cookie value; the first attempt tries that
  // server before the balancer's choice.
  ServerSelection(UpstreamBalancer* balancer, std::uint64_t key_hash, std::string affinity = {});

  // The next server to try (its slot taken), or nullptr when the attempts are used up or
  // no server can take the connection.
  const conf::UpstreamServer* next();
  // The current attempt failed before the upstream answered (passive health counts it);
  // `reason` (names::kConnectFailureReasons; empty: not counted) labels
  // wsgate_upstream_connect_failures_total.
  void failed(std::string_view why, std::string_view reason = {});
  // The current attempt's new connection opened after `seconds` (resolve, TCP, TLS).
  void connected(double seconds);
  // The current attempt got the upstream's answer: the slot, held until the connection ends.
  // Passive health counts it a success, or with `status` a gateway failure of the server
  // (gateway_failure(status): 502, 503, 504) a failure toward eject_after_failures.
  ServerLease succeeded(int status = 0);
  // One line for a 503 when next() found nothing at all.
  std::string unavailable_reason() const;
  int attempts() const { return attempts_; }
  // The upstream the servers belong to (null for a selection that finds nothing).
  const conf::Upstream* upstream() const {
    return balancer_ != nullptr ? &balancer_->upstream() : nullptr;
  }
  // The server of the current attempt (null between attempts).
  const ServerState* current() const { return current_.server(); }

 private:
  UpstreamBalancer* balancer_ = nullptr;
  std::uint64_t key_hash_ = 0;
  std::string affinity_;
  std::vector<const ServerState*> tried_;  // before the last attempt's
  const ServerState* last_ = nullptr;      // the last attempt's server
  ServerLease current_;
  int attempts_ = 0;
};

class Balancers {
 public:
  // `seed` varies the random balancers between workers.
  Balancers(std::shared_ptr<UpstreamPools> pools, std::uint64_t seed,
            metrics::WorkerMetrics* metrics = nullptr);
  // The selection for one request to `upstream` (the hash key is read from the request
  // only when the upstream hashes; the affinity cookie only when it has one). Unknown upstream: a
  // selection that finds nothing.
  ServerSelection select(const conf::Upstream& upstream, std::string_view client_ip,
                         const http::RequestHead& request);

 private:
  std::shared_ptr<UpstreamPools> pools_;
  std::uint64_t seed_;
  metrics::WorkerMetrics* metrics_;
  std::vector<std::unique_ptr<UpstreamBalancer>> balancers_;  // made on first use
};

}  // namespace wsgate::proxy
