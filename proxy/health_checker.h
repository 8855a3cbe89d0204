// Active health checks: every server of every upstream with an [upstream.health_check]
// is probed every `interval` (HealthProbe) on one event loop, the main thread's. The
// results go through a HealthState per server (rise/fall); a transition is logged and
// published to the workers by storing ServerState::check_up, which their balancers read
// when they pick (upstream_pool.h explains why an atomic flag rather than a message).
//
// Ownership: the Server owns the checker and destroys it on the loop's thread after the
// loop has stopped; probes are owned by their target and destroyed only outside their
// callbacks.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/health_probe.h"
#include "proxy/health_state.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream_pool.h"

namespace wsgate::proxy {

class HealthChecker {
 public:
  // `config` and `pools` must outlive the checker.
  HealthChecker(event_base* base, const conf::Config& config, UpstreamPools& pools);
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Probes every checked server now, then every interval.
  void start();
  std::size_t target_count() const { return targets_.size(); }

 private:
  struct Target {
    Target(event_base* base, const conf::Upstream& u, std::size_t i, Pool& p,
           HealthChecker* checker)
        : upstream(u),
          index(i),
          pool(p),
          state(u.health_check.rise, u.health_check.fall),
          timer(base, [this, checker] { checker->probe(*this); }) {}
    const conf::Upstream& upstream;
    std::size_t index;  // server index in the upstream and the pool
    Pool& pool;
    HealthState state;
    Timer timer;  // the next probe
    std::unique_ptr<HealthProbe> probe;
  };

  void probe(Target& t);
  void on_result(Target& t, bool ok, const std::string& detail);

  event_base* base_;
  DnsBasePtr dns_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace wsgate::proxy
