#include "proxy/health_checker.h"

#include "metrics/log.h"

namespace wsgate::proxy {

HealthChecker::HealthChecker(event_base* base, const conf::Config& config, UpstreamPools& pools)
    : base_(base) {
  for (const conf::Upstream& u : config.upstreams) {
    if (!u.health_check.enabled) continue;
    Pool* pool = pools.find(u.name);
    if (pool == nullptr) continue;
    for (std::size_t i = 0; i < u.servers.size(); ++i)
      targets_.push_back(std::make_unique<Target>(base, u, i, *pool, this));
  }
  if (targets_.empty()) return;
  // Names resolve without blocking the loop (resolv.conf, /etc/hosts); without a
  // resolv.conf an empty resolver still handles IP literals.
  dns_.reset(evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns_) dns_.reset(evdns_base_new(base, 0));
}

void HealthChecker::start() {
  for (auto& t : targets_) probe(*t);
}

void HealthChecker::probe(Target& t) {
  // The previous probe is over (timeout <= interval) and we are outside its callbacks.
  t.probe.reset();
  t.timer.arm_ms(t.upstream.health_check.interval.count());
  t.probe = std::make_unique<HealthProbe>(
      base_, dns_.get(), t.upstream.servers[t.index], t.upstream.health_check,
      [this, &t](bool ok, std::string detail) { on_result(t, ok, detail); });
  t.probe->start();
}

void HealthChecker::on_result(Target& t, bool ok, const std::string& detail) {
  const auto changed = t.state.record(ok);
  if (!changed) return;
  const bool up = *changed == Health::Up;
  if (up) t.pool.mark_back(t.index, steady_now_ms());
  t.pool.server(t.index).check_up.store(up, std::memory_order_release);
  const conf::HealthCheck& hc = t.upstream.health_check;
  const std::string message =
      "upstream " + t.upstream.name + ": server " + t.upstream.servers[t.index].text + " is " +
      to_string(*changed) + " (health check: " + std::to_string(up ? hc.rise : hc.fall) +
      " consecutive " + (up ? "successes" : "failures") + ", last: " + detail + ")";
  if (up) {
    log::info(message);
  } else {
    log::warn(message);
  }
}

}  // namespace wsgate::proxy
