#include "proxy/upstream_pool.h"

#include <algorithm>
#include <chrono>

#include "metrics/log.h"

namespace wsgate::proxy {

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool ServerState::try_acquire() {
  const std::uint32_t limit = config.max_connections;
  if (limit == 0) {
    active.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Compare-and-swap so that concurrent workers never take the server past its limit.
  std::uint32_t now = active.load(std::memory_order_relaxed);
  while (now < limit) {
    if (active.compare_exchange_weak(now, now + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

Pool::Pool(const conf::Upstream& upstream)
    : name_(upstream.name),
      eject_after_failures_(upstream.eject_after_failures),
      eject_ms_(upstream.eject_duration.count()),
      slow_start_ms_(upstream.slow_start.count()) {
  for (const auto& s : upstream.servers) servers_.push_back(std::make_unique<ServerState>(s));
}

bool Pool::available(std::size_t i, std::int64_t now_ms) {
  ServerState& s = *servers_[i];
  if (!s.check_up.load(std::memory_order_acquire)) return false;
  std::int64_t until = s.ejected_until_ms.load(std::memory_order_acquire);
  if (until == 0) return true;
  if (now_ms < until) return false;
  // The ejection ran out: the first worker to notice ends it and says so.
  if (s.ejected_until_ms.compare_exchange_strong(until, 0, std::memory_order_acq_rel)) {
    mark_back(i, now_ms);
    log::info("upstream " + name_ + ": server " + s.config.text +
              " back in rotation after its passive ejection");
  }
  return true;
}

bool Pool::record_failure(std::size_t i, std::string_view why, std::int64_t now_ms) {
  ServerState& s = *servers_[i];
  const std::uint32_t failures = s.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (eject_after_failures_ == 0 || failures < eject_after_failures_) return false;
  std::int64_t until = s.ejected_until_ms.load(std::memory_order_acquire);
  if (until != 0 && now_ms < until) return false;  // already ejected
  if (!s.ejected_until_ms.compare_exchange_strong(until, now_ms + eject_ms_,
                                                  std::memory_order_acq_rel))
    return false;  // another worker ejected it just now
  s.consecutive_failures.store(0, std::memory_order_relaxed);
  log::warn("upstream " + name_ + ": server " + s.config.text + " ejected for " +
            std::to_string(eject_ms_) + " ms after " + std::to_string(failures) +
            " consecutive failures (last: " + std::string(why) + ")");
  return true;
}

void Pool::record_success(std::size_t i) {
  servers_[i]->consecutive_failures.store(0, std::memory_order_relaxed);
}

void Pool::mark_back(std::size_t i, std::int64_t now_ms) {
  servers_[i]->back_since_ms.store(now_ms, std::memory_order_relaxed);
}

std::uint32_t Pool::effective_weight(std::size_t i, std::int64_t now_ms) const {
  const ServerState& s = *servers_[i];
  const std::uint32_t full = s.config.weight * kWeightScale;
  const std::int64_t since = s.back_since_ms.load(std::memory_order_relaxed);
  if (slow_start_ms_ <= 0 || since == 0 || now_ms - since >= slow_start_ms_) return full;
  // Never below 10%: a server in slow start still gets a trickle of connections.
  const std::int64_t elapsed = std::max<std::int64_t>(now_ms - since, 0);
  const std::int64_t ramped = std::int64_t{full} * elapsed / slow_start_ms_;
  return static_cast<std::uint32_t>(std::max<std::int64_t>(ramped, full / 10));
}

std::string Pool::describe_unavailable(std::int64_t now_ms) const {
  std::string out;
  for (const auto& s : servers_) {
    std::string state;
    const std::int64_t until = s->ejected_until_ms.load(std::memory_order_acquire);
    if (!s->check_up.load(std::memory_order_acquire)) {
      state = "down (health check)";
    } else if (until != 0 && now_ms < until) {
      state = "ejected after failures";
    } else if (s->config.max_connections != 0 &&
               s->active.load(std::memory_order_relaxed) >= s->config.max_connections) {
      state = "at max_connections " + std::to_string(s->config.max_connections);
    } else {
      state = "failed this request";
    }
    out += (out.empty() ? "" : ", ") + s->config.text + " " + state;
  }
  return out;
}

UpstreamPools::UpstreamPools(const conf::Config& config) {
  for (const auto& u : config.upstreams) pools_.push_back(std::make_unique<Pool>(u));
}

Pool* UpstreamPools::find(std::string_view upstream_name) {
  for (auto& p : pools_)
    if (p->name() == upstream_name) return p.get();
  return nullptr;
}

}  // namespace wsgate::proxy
