#include "proxy/upstream/health_checker.h"

#include <algorithm>

#include "metrics/log.h"
#include "proxy/codec/proxy_protocol_writer.h"

namespace wsgate::proxy {

HealthChecker::HealthChecker(event_base* base, const conf::Config& config, UpstreamPools& pools)
    : base_(base) {
  for (const conf::Upstream& u : config.upstreams) {
    if (!u.health_check.enabled) continue;
    if (Pool* pool = pools.find(u.name))
      checked_.push_back(std::make_unique<Checked>(base, u, *pool, this));
  }
  if (checked_.empty()) return;
  // Members are usually IP addresses; a name (resolve_interval = "0s") resolves without
  // blocking the loop. Without a resolv.conf an empty resolver still handles literals.
  dns_.reset(evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns_) dns_.reset(evdns_base_new(base, 0));
}

void HealthChecker::start() {
  for (auto& c : checked_) sync(*c);
}

void HealthChecker::sync(Checked& c) {
  c.sync.arm_ms(c.upstream.health_check.interval.count());
  if (c.pool.generation() == c.generation) return;
  const auto members = c.pool.members();
  c.generation = members->generation;
  // Targets of members that left go (with their probe; we are in a timer callback, not
  // in the probe's); members that stayed keep their target and its rise/fall count.
  std::erase_if(c.targets, [&](const std::unique_ptr<Target>& t) {
    return std::find(members->servers.begin(), members->servers.end(), t->server) ==
           members->servers.end();
  });
  for (const ServerPtr& s : members->servers) {
    const bool known = std::any_of(c.targets.begin(), c.targets.end(),
                                   [&](const auto& t) { return t->server == s; });
    if (known) continue;
    c.targets.push_back(std::make_unique<Target>(base_, &c, c.upstream.health_check, s, this));
    probe(*c.targets.back());
  }
}

void HealthChecker::probe(Target& t) {
  // The previous probe is over (timeout <= interval) and we are outside its callbacks.
  t.probe.reset();
  Checked* owner = t.owner;
  const conf::HealthCheck& hc = owner->upstream.health_check;
  t.timer.arm_ms(hc.interval.count());
  t.probe = std::make_unique<HealthProbe>(
      base_, dns_.get(), t.server->config, hc,
      [this, owner, &t](bool ok, std::string detail) { on_result(*owner, t, ok, detail); });
  // The check is the gateway's own connection: a LOCAL (v2) / UNKNOWN (v1) header, so an
  // upstream that requires the header accepts it and logs no client for it.
  switch (owner->upstream.send_proxy_protocol) {
    case conf::Upstream::ProxyProtocol::V1:
      t.probe->send_first(proxy_protocol::encode_local(proxy_protocol::Version::V1));
      break;
    case conf::Upstream::ProxyProtocol::V2:
      t.probe->send_first(proxy_protocol::encode_local(proxy_protocol::Version::V2));
      break;
    case conf::Upstream::ProxyProtocol::Off:
      break;
  }
  t.probe->start();
}

void HealthChecker::on_result(Checked& c, Target& t, bool ok, const std::string& detail) {
  const auto changed = t.state.record(ok);
  if (!changed) return;
  const bool up = *changed == Health::Up;
  if (up) Pool::mark_back(*t.server, steady_now_ms());
  t.server->check_up.store(up, std::memory_order_release);
  (up ? t.server->transitions_up : t.server->transitions_down)
      .fetch_add(1, std::memory_order_relaxed);
  const conf::HealthCheck& hc = c.upstream.health_check;
  const std::string message =
      "upstream " + c.upstream.name + ": server " + t.server->config.text + " is " +
      to_string(*changed) + " (health check: " + std::to_string(up ? hc.rise : hc.fall) +
      " consecutive " + (up ? "successes" : "failures") + ", last: " + detail + ")";
  if (up) {
    log::info(message);
  } else {
    log::warn(message);
  }
}

}  // namespace wsgate::proxy
