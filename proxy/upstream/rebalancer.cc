#include "proxy/upstream/rebalancer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "metrics/log.h"

namespace wsgate::proxy {

std::vector<std::size_t> plan_shedding(const std::vector<ServerLoad>& servers, double factor,
                                       double expected_total) {
  std::vector<std::size_t> shed(servers.size(), 0);
  double total = 0, weights = 0;
  for (const ServerLoad& s : servers) {
    if (!s.available) continue;
    total += s.active;  // closing ones included: those clients come back
    weights += s.weight;
  }
  if (weights <= 0 || total <= 0) return shed;
  total = std::max(total, expected_total);
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const ServerLoad& s = servers[i];
    if (!s.available) continue;
    const double fair = total * s.weight / weights;
    const double held = static_cast<double>(s.active) - std::min(s.closing, s.active);
    // Shed down to the share, not to share x factor: 45/45/0 becomes 30/30/30.
    if (held > factor * fair) shed[i] = static_cast<std::size_t>(std::floor(held - fair));
  }
  return shed;
}

struct Rebalancer::Upstream {
  Upstream(event_base* base, const conf::Upstream& c, Pool& p, Rebalancer* owner)
      : config(c), pool(p), timer(base, [this, owner] { owner->tick(*this); }) {}
  const conf::Upstream& config;
  Pool& pool;
  Timer timer;
  std::vector<std::pair<ServerPtr, std::size_t>> plan;  // still to shed, per server
  std::int64_t quiet_until_ms = 0;   // no new plan before this (reconnects settle)
  double expected_total = 0;         // the last plan's total: its clients come back ...
  std::int64_t expect_until_ms = 0;  // ... until this (kReconnectGraceMs after it)
  double tokens = 0;                 // sheds allowed now (max_per_second)
  std::int64_t last_ms = 0;
  bool stopped = false;
};

Rebalancer::Rebalancer(event_base* base, const conf::Config& config, UpstreamPools& pools,
                       ShedFn shed)
    : shed_(std::move(shed)) {
  for (const conf::Upstream& u : config.upstreams) {
    if (!u.rebalance.enabled) continue;
    if (Pool* pool = pools.find(u.name))
      upstreams_.push_back(std::make_unique<Upstream>(base, u, *pool, this));
  }
}

Rebalancer::~Rebalancer() = default;

void Rebalancer::start() {
  const std::int64_t now = steady_now_ms();
  for (auto& u : upstreams_) {
    u->last_ms = now;
    u->tokens = u->config.rebalance.max_per_second *
                std::min(1.0, static_cast<double>(u->config.rebalance.interval.count()) / 1000);
    u->timer.arm_ms(u->config.rebalance.interval.count());
  }
}

void Rebalancer::stop() {
  for (auto& u : upstreams_) {
    u->stopped = true;
    u->timer.cancel();
  }
}

void Rebalancer::tick(Upstream& u) {
  if (u.stopped) return;
  const conf::Upstream::Rebalance& cfg = u.config.rebalance;
  u.timer.arm_ms(cfg.interval.count());
  const std::int64_t now = steady_now_ms();
  // Token bucket: max_per_second, bursting to at most one interval's (or one second's).
  const double rate = cfg.max_per_second;
  const double cap =
      std::max(1.0, rate * std::min(1.0, static_cast<double>(cfg.interval.count()) / 1000));
  u.tokens = std::min(cap, u.tokens + rate * static_cast<double>(now - u.last_ms) / 1000);
  u.last_ms = now;

  if (u.plan.empty()) {
    if (now < u.quiet_until_ms) return;
    const std::shared_ptr<const Members> members = u.pool.members();
    std::vector<ServerLoad> loads;
    for (const ServerPtr& s : members->servers) {
      const bool available = !s->config.backup && u.pool.available(*s, now);
      // A server in slow start takes only part of the new connections: clients shed now
      // would mostly go back to the servers they left. Plan once its ramp is over.
      if (available && u.pool.effective_weight(*s, now) < s->config.weight * Pool::kWeightScale)
        return;
      // Connections still held on the states a reload replaced count too.
      loads.push_back({s->connections(), s->closing_connections(), s->config.weight, available});
    }
    const double expected = now < u.expect_until_ms ? u.expected_total : 0;
    const std::vector<std::size_t> shed = plan_shedding(loads, cfg.factor, expected);
    std::string summary;
    std::size_t available = 0;
    double total = 0;
    for (std::size_t i = 0; i < loads.size(); ++i) {
      summary += (summary.empty() ? "" : ", ") + members->servers[i]->config.text + " " +
                 std::to_string(loads[i].active) + (loads[i].available ? "" : " (unavailable)");
      if (loads[i].available) {
        available++;
        total += loads[i].active;
      }
      if (shed[i] > 0) u.plan.emplace_back(members->servers[i], shed[i]);
    }
    if (u.plan.empty()) return;
    total = std::max(total, expected);
    u.expected_total = total;
    std::string what;
    for (const auto& [s, n] : u.plan)
      what += (what.empty() ? "" : ", ") + std::to_string(n) + " from " + s->config.text;
    char factor[32];
    std::snprintf(factor, sizeof factor, "%g", cfg.factor);
    log::info("upstream " + u.config.name + ": rebalancing " + std::to_string(int(total)) +
              " connection(s) over " + std::to_string(available) + " available server(s) (" +
              summary + "; factor " + factor + "): shedding " + what);
  }

  // Carry out the plan: one connection per token, taken from the servers in turn.
  std::vector<std::size_t> batch(u.plan.size(), 0);
  std::size_t budget = static_cast<std::size_t>(u.tokens);
  for (bool any = true; budget > 0 && any;) {
    any = false;
    for (std::size_t i = 0; i < u.plan.size() && budget > 0; ++i) {
      if (batch[i] < u.plan[i].second) {
        batch[i]++;
        budget--;
        any = true;
      }
    }
  }
  for (std::size_t i = 0; i < u.plan.size(); ++i) {
    if (batch[i] == 0) continue;
    u.tokens -= static_cast<double>(batch[i]);
    u.plan[i].second -= batch[i];
    log::info("upstream " + u.config.name + ": rebalancing: closing " + std::to_string(batch[i]) +
              " connection(s) of " + u.plan[i].first->config.text + " with 1001 over " +
              std::to_string(cfg.interval.count()) + " ms (" + std::to_string(u.plan[i].second) +
              " more to go)");
    shed_(u.config.name, u.plan[i].first, batch[i], cfg.interval);
  }
  std::erase_if(u.plan, [](const auto& p) { return p.second == 0; });
  // The last batch closes over the next interval; the clients then reconnect. Look again
  // only after both.
  if (u.plan.empty()) {
    u.quiet_until_ms = now + 2 * cfg.interval.count();
    u.expect_until_ms = now + std::max(kReconnectGraceMs, 10 * cfg.interval.count());
  }
}

}  // namespace wsgate::proxy
