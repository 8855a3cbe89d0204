#include "proxy/upstream/upstream_pool.h"

#include <algorithm>
#include <chrono>

#include "conf/address.h"
#include "conf/units.h"
#include "metrics/log.h"

namespace wsgate::proxy {
namespace {

// Members of a configured server come before those of the next; within one, by text.
bool member_order(const ServerPtr& a, const ServerPtr& b) {
  return a->config_index != b->config_index ? a->config_index < b->config_index
                                            : a->config.text < b->config.text;
}

}  // namespace

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ServerState::ServerState(const conf::UpstreamServer& c, std::size_t index,
                         std::shared_ptr<ServerState> before)
    : config(c), config_index(index), predecessor(std::move(before)) {
  const ServerState& b = *predecessor;
  check_up.store(b.check_up.load(std::memory_order_acquire), std::memory_order_relaxed);
  consecutive_failures.store(b.consecutive_failures.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
  ejected_until_ms.store(b.ejected_until_ms.load(std::memory_order_acquire),
                         std::memory_order_relaxed);
  back_since_ms.store(b.back_since_ms.load(std::memory_order_relaxed), std::memory_order_relaxed);
  transitions_up.store(b.transitions_up.load(std::memory_order_relaxed), std::memory_order_relaxed);
  transitions_down.store(b.transitions_down.load(std::memory_order_relaxed),
                         std::memory_order_relaxed);
}

bool ServerState::try_acquire() {
  const std::uint32_t limit = config.max_connections;
  if (limit == 0) {
    active.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Those still held on a predecessor (a reload changed this server's options) count too.
  const std::uint32_t inherited = predecessor ? predecessor->connections() : 0;
  // Compare-and-swap so that concurrent workers never take the server past its limit.
  std::uint32_t now = active.load(std::memory_order_relaxed);
  while (now + inherited < limit) {
    if (active.compare_exchange_weak(now, now + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

Pool::Pool(const conf::Upstream& upstream, const Pool* previous)
    : upstream_(upstream),
      name_(upstream.name),
      eject_after_failures_(upstream.eject_after_failures),
      eject_ms_(upstream.eject_duration.count()),
      slow_start_ms_(upstream.slow_start.count()) {
  std::vector<ServerPtr> servers;
  for (std::size_t i = 0; i < upstream.servers.size(); ++i) {
    const conf::UpstreamServer& s = upstream.servers[i];
    const bool resolves = upstream.resolve_interval.count() > 0 && !conf::is_ip_literal(s.host);
    if (previous != nullptr) {
      std::vector<ServerPtr> carried = previous->carried_members(s, i, resolves);
      if (!carried.empty()) {
        servers.insert(servers.end(), carried.begin(), carried.end());
        continue;
      }
    }
    // A name with a resolve_interval has no member until the resolver's first answer;
    // otherwise the configured server is the member (a name then resolves per connect).
    if (resolves) continue;
    servers.push_back(std::make_shared<ServerState>(s, i));
  }
  const std::lock_guard<std::mutex> lock(mutex_);
  publish(std::move(servers));
}

void Pool::publish(std::vector<ServerPtr> servers) {
  std::sort(servers.begin(), servers.end(), member_order);
  auto members = std::make_shared<Members>();
  members->generation = generation_.load(std::memory_order_relaxed) + 1;
  members->servers = std::move(servers);
  members_ = std::move(members);
  generation_.store(members_->generation, std::memory_order_release);
}

std::vector<ServerPtr> Pool::carried_members(const conf::UpstreamServer& s, std::size_t index,
                                             bool resolves) const {
  std::vector<ServerPtr> out;
  for (const ServerPtr& m : members()->servers) {
    const conf::UpstreamServer& was = upstream_.servers.at(m->config_index);
    if (was.text != s.text) continue;
    // A member found by DNS carries over only to a name that is still resolved, and the
    // configured server itself only to one that is not.
    const bool dns_member = m->config.text != was.text;
    if (dns_member != resolves) continue;
    const bool same = m->config_index == index && was.weight == s.weight &&
                      was.max_connections == s.max_connections && was.backup == s.backup;
    if (same) {
      out.push_back(m);
      continue;
    }
    conf::UpstreamServer member = s;
    member.host = m->config.host;
    member.text = m->config.text;
    out.push_back(std::make_shared<ServerState>(member, index, m));
  }
  return out;
}

std::shared_ptr<const Members> Pool::members() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return members_;
}

std::pair<std::vector<std::string>, std::vector<std::string>> Pool::set_addresses(
    std::size_t config_index, const std::vector<std::string>& addresses) {
  const conf::UpstreamServer& configured = upstream_.servers.at(config_index);
  const std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ServerPtr> next;
  std::vector<std::string> added, removed;
  for (const ServerPtr& s : members_->servers) {
    const bool keep =
        s->config_index != config_index ||
        std::find(addresses.begin(), addresses.end(), s->config.host) != addresses.end();
    if (keep) {
      next.push_back(s);
    } else {
      removed.push_back(s->config.text);
    }
  }
  for (const std::string& ip : addresses) {
    const bool known = std::any_of(next.begin(), next.end(), [&](const ServerPtr& s) {
      return s->config_index == config_index && s->config.host == ip;
    });
    if (known) continue;
    conf::UpstreamServer member = configured;
    member.name = configured.host;  // TLS: SNI and verification by the configured name
    member.host = ip;
    member.text = conf::format_host_port(ip, configured.port);
    added.push_back(member.text);
    next.push_back(std::make_shared<ServerState>(member, config_index));
  }
  if (!added.empty() || !removed.empty()) publish(std::move(next));
  return {added, removed};
}

bool Pool::available(ServerState& s, std::int64_t now_ms) const {
  if (!s.check_up.load(std::memory_order_acquire)) return false;
  std::int64_t until = s.ejected_until_ms.load(std::memory_order_acquire);
  if (until == 0) return true;
  if (now_ms < until) return false;
  // The ejection ran out: the first worker to notice ends it and says so.
  if (s.ejected_until_ms.compare_exchange_strong(until, 0, std::memory_order_acq_rel)) {
    mark_back(s, now_ms);
    s.transitions_up.fetch_add(1, std::memory_order_relaxed);
    log::info("upstream " + name_ + ": server " + s.config.text +
              " back in rotation after its passive ejection");
  }
  return true;
}

bool Pool::record_failure(ServerState& s, std::string_view why, std::int64_t now_ms) const {
  const std::uint32_t failures = s.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (eject_after_failures_ == 0 || failures < eject_after_failures_) return false;
  std::int64_t until = s.ejected_until_ms.load(std::memory_order_acquire);
  if (until != 0 && now_ms < until) return false;  // already ejected
  if (!s.ejected_until_ms.compare_exchange_strong(until, now_ms + eject_ms_,
                                                  std::memory_order_acq_rel))
    return false;  // another worker ejected it just now
  s.consecutive_failures.store(0, std::memory_order_relaxed);
  s.transitions_down.fetch_add(1, std::memory_order_relaxed);
  log::warn("upstream " + name_ + ": server " + s.config.text + " ejected for " +
            std::to_string(eject_ms_) + " ms after " + std::to_string(failures) +
            " consecutive failures (last: " + std::string(why) + ")");
  return true;
}

void Pool::record_success(ServerState& s) {
  s.consecutive_failures.store(0, std::memory_order_relaxed);
}

void Pool::mark_back(ServerState& s, std::int64_t now_ms) {
  s.back_since_ms.store(now_ms, std::memory_order_relaxed);
}

std::uint32_t Pool::effective_weight(const ServerState& s, std::int64_t now_ms) const {
  const std::uint32_t full = s.config.weight * kWeightScale;
  const std::int64_t since = s.back_since_ms.load(std::memory_order_relaxed);
  if (slow_start_ms_ <= 0 || since == 0 || now_ms - since >= slow_start_ms_) return full;
  // Never below 10%: a server in slow start still gets a trickle of connections.
  const std::int64_t elapsed = std::max<std::int64_t>(now_ms - since, 0);
  const std::int64_t ramped = std::int64_t{full} * elapsed / slow_start_ms_;
  return static_cast<std::uint32_t>(std::max<std::int64_t>(ramped, full / 10));
}

std::string Pool::describe_unavailable(std::int64_t now_ms) const {
  const auto members = this->members();
  std::string out;
  for (std::size_t i = 0; i < upstream_.servers.size(); ++i) {
    bool any = false;
    for (const auto& s : members->servers) {
      if (s->config_index != i) continue;
      any = true;
      std::string state;
      const std::int64_t until = s->ejected_until_ms.load(std::memory_order_acquire);
      if (!s->check_up.load(std::memory_order_acquire)) {
        state = "down (health check)";
      } else if (until != 0 && now_ms < until) {
        state = "ejected after failures";
      } else if (s->config.max_connections != 0 && s->connections() >= s->config.max_connections) {
        state = "at max_connections " + std::to_string(s->config.max_connections);
      } else {
        state = "failed this request";
      }
      out += (out.empty() ? "" : ", ") + s->config.text + " " + state;
    }
    if (!any)
      out +=
          (out.empty() ? "" : ", ") + upstream_.servers[i].text + " has no address (not resolved)";
  }
  return out;
}

UpstreamPools::UpstreamPools(const conf::Config& config, const UpstreamPools* previous) {
  for (const auto& u : config.upstreams) {
    const Pool* before = nullptr;
    if (previous != nullptr)
      for (const auto& p : previous->pools_)
        if (p->name() == u.name) before = p.get();
    pools_.push_back(std::make_unique<Pool>(u, before));
  }
}

Pool* UpstreamPools::find(std::string_view upstream_name) {
  for (auto& p : pools_)
    if (p->name() == upstream_name) return p.get();
  return nullptr;
}

}  // namespace wsgate::proxy
