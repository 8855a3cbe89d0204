// Active health checks: every member of every upstream with an [upstream.health_check]
// is probed every `interval` (HealthProbe) on one event loop, the main thread's. The
// results go through a HealthState per member (rise/fall); a transition is logged and
// published to the workers by storing ServerState::check_up, which their balancers read
// when they pick (upstream_pool.h explains why an atomic flag rather than a message).
// Members come and go with DNS: each interval the targets follow the pool's members.
//
// Ownership: the Server owns the checker and destroys it on the loop's thread after the
// loop has stopped; probes are owned by their target and destroyed only outside their
// callbacks (when the next probe starts, when the target goes, at shutdown).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/health_probe.h"
#include "proxy/upstream/health_state.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::proxy {

class HealthChecker {
 public:
  // `config` and `pools` must outlive the checker.
  HealthChecker(event_base* base, const conf::Config& config, UpstreamPools& pools);
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Probes every checked member now, then every interval.
  void start();

 private:
  struct Checked;
  struct Target {
    Target(event_base* base, Checked* c, const conf::HealthCheck& hc, ServerPtr s,
           HealthChecker* checker)
        : owner(c),
          server(std::move(s)),
          // A server carried over by a reload keeps its verdict (gateway/reload.cc).
          state(hc.rise, hc.fall,
                server->check_up.load(std::memory_order_acquire) ? Health::Up : Health::Down),
          timer(base, [this, checker] { checker->probe(*this); }) {}
    Checked* owner;
    ServerPtr server;
    HealthState state;
    Timer timer;  // the next probe
    std::unique_ptr<HealthProbe> probe;
  };
  struct Checked {  // one upstream with a health_check
    Checked(event_base* base, const conf::Upstream& u, Pool& p, HealthChecker* checker)
        : upstream(u), pool(p), sync(base, [this, checker] { checker->sync(*this); }) {}
    const conf::Upstream& upstream;
    Pool& pool;
    std::uint64_t generation = 0;  // of the members the targets follow
    std::vector<std::unique_ptr<Target>> targets;
    Timer sync;  // every interval: follow membership changes
  };

  void sync(Checked& c);
  void probe(Target& t);
  void on_result(Checked& c, Target& t, bool ok, const std::string& detail);

  event_base* base_;
  DnsBasePtr dns_;
  std::vector<std::unique_ptr<Checked>> checked_;
};

}  // namespace wsgate::proxy
