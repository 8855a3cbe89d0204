// Rebalancing after scale-out (opt-in per upstream, [upstream.rebalance]). WebSocket
// connections live long, so when a server joins (or comes back), the balancer only sends
// it new connections while the old servers keep theirs. The rebalancer, on the main
// thread every `interval`, compares each available server's connections with its fair
// share (the weight share of all the connections the upstream's available servers hold);
// a server above factor x its share is shed down to its share with Close 1001 (the
// clients reconnect and the balancer places them on the less loaded servers).
//
// No over-shedding: connections the gateway is already closing (ServerState::closing)
// count as gone; a plan is computed once and carried out at most max_per_second (each
// batch spread over one interval by the workers); the next plan is computed only after
// the shed clients have had time to reconnect (two intervals after the last batch). Clients
// that reconnect later than that (a backoff of a few seconds is common) would leave the
// total low and make the old servers look overloaded again: for kReconnectGraceMs (or ten
// intervals, whichever is longer) after a plan, the fair shares are computed from at
// least the total the plan saw, so connections on their way back are not shed twice.
// While a server is in slow start (its weight still ramping) no plan is made: the
// balancer would send most of the shed clients back to the servers they left.
//
// Ownership: the Server owns it on the main thread; `shed` posts to the workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::proxy {

// One server as the plan sees it.
struct ServerLoad {
  std::uint32_t active = 0;   // connections it holds (ServerState::active)
  std::uint32_t closing = 0;  // of those, being closed by the gateway
  unsigned weight = 1;
  bool available = true;  // up, not ejected, not a backup
};

// How many connections each server should shed (same order as `servers`): for an
// available server holding more than factor x fair share (after its closing ones), the
// excess over its share, rounded down; 0 for the others. Fair share = (connections of
// the available servers, or `expected_total` when that is more: clients shed by the last
// plan that have not reconnected yet) x weight / (weights of the available servers).
std::vector<std::size_t> plan_shedding(const std::vector<ServerLoad>& servers, double factor,
                                       double expected_total = 0);

// After a plan, how long its total still counts (see expected_total above), in ms.
inline constexpr std::int64_t kReconnectGraceMs = 10000;

class Rebalancer {
 public:
  // Asks the workers to close `count` of `server`'s connections with Close 1001, spread
  // over `spread`.
  using ShedFn = std::function<void(const std::string& upstream, const ServerPtr& server,
                                    std::size_t count, conf::Duration spread)>;

  // `config` and `pools` must outlive the rebalancer.
  Rebalancer(event_base* base, const conf::Config& config, UpstreamPools& pools, ShedFn shed);
  ~Rebalancer();
  Rebalancer(const Rebalancer&) = delete;
  Rebalancer& operator=(const Rebalancer&) = delete;

  void start();
  void stop();  // draining: no more shedding

 private:
  struct Upstream;
  void tick(Upstream& u);

  ShedFn shed_;
  std::vector<std::unique_ptr<Upstream>> upstreams_;
};

}  // namespace wsgate::proxy
