#include "proxy/upstream/balancer.h"

#include <algorithm>

#include "proxy/upstream/affinity.h"
#include "proxy/upstream/hash_key.h"
#include "proxy/upstream/stable_hash.h"

namespace wsgate::proxy {

UpstreamBalancer::UpstreamBalancer(const conf::Upstream& upstream, Pool& pool, std::uint64_t seed,
                                   metrics::WorkerMetrics* metrics)
    : upstream_(upstream), pool_(pool), seed_(seed), metrics_(metrics) {
  rebuild();
}

void UpstreamBalancer::rebuild() {
  const std::shared_ptr<const Members> members = pool_.members();
  generation_ = members->generation;
  std::vector<Member> primary, backup;
  primary_.servers.clear();
  backup_.servers.clear();
  primary_.affinity.clear();
  backup_.affinity.clear();
  for (const ServerPtr& s : members->servers) {
    (s->config.backup ? backup : primary).push_back({s->config.text, s->config.weight});
    Group& group = s->config.backup ? backup_ : primary_;
    group.servers.push_back(s);
    if (!upstream_.affinity_cookie.empty())
      group.affinity.push_back(affinity_value(upstream_.name, s->config));
  }
  primary_.lb = make_load_balancer(upstream_.balancer, std::move(primary), seed_);
  backup_.lb = make_load_balancer(upstream_.balancer, std::move(backup), mix64(seed_));
}

ServerLease UpstreamBalancer::pick(std::uint64_t key_hash,
                                   const std::vector<const ServerState*>& tried,
                                   std::int64_t now_ms) {
  if (pool_.generation() != generation_) rebuild();
  if (ServerLease lease = pick_in(primary_, key_hash, tried, now_ms)) return lease;
  return pick_in(backup_, key_hash, tried, now_ms);
}

ServerLease UpstreamBalancer::pick_affine(std::string_view value, std::int64_t now_ms) {
  if (pool_.generation() != generation_) rebuild();
  for (Group* group : {&primary_, &backup_}) {
    for (std::size_t m = 0; m < group->affinity.size(); ++m)
      if (group->affinity[m] == value) return acquire_if_eligible(group->servers[m], now_ms);
  }
  return {};  // not a member (any more): the balancer chooses
}

ServerLease UpstreamBalancer::acquire_if_eligible(const ServerPtr& s, std::int64_t now_ms) {
  const bool full = s->config.max_connections != 0 && s->connections() >= s->config.max_connections;
  if (full || !pool_.available(*s, now_ms) || !s->try_acquire()) return {};
  return ServerLease(s);
}

ServerLease UpstreamBalancer::pick_in(Group& group, std::uint64_t key_hash,
                                      const std::vector<const ServerState*>& tried,
                                      std::int64_t now_ms) {
  loads_.assign(group.servers.size(), MemberLoad{});
  for (std::size_t m = 0; m < group.servers.size(); ++m) {
    ServerState& s = *group.servers[m];
    loads_[m].active = s.connections();
    loads_[m].weight = pool_.effective_weight(s, now_ms);
    const bool full = s.config.max_connections != 0 && loads_[m].active >= s.config.max_connections;
    const bool was_tried = std::find(tried.begin(), tried.end(), &s) != tried.end();
    loads_[m].eligible = !was_tried && !full && pool_.available(s, now_ms);
  }
  // Another worker may take the last slot between the snapshot and try_acquire: then
  // that server is out for this pick and the balancer chooses again (at most N times).
  for (std::size_t round = 0; round < group.servers.size(); ++round) {
    const auto m = group.lb->pick(loads_, key_hash);
    if (!m) break;
    if (group.servers[*m]->try_acquire()) return ServerLease(group.servers[*m]);
    loads_[*m].eligible = false;
  }
  return {};
}

ServerSelection::ServerSelection(UpstreamBalancer* balancer, std::uint64_t key_hash,
                                 std::string affinity)
    : balancer_(balancer), key_hash_(key_hash), affinity_(std::move(affinity)) {}

const conf::UpstreamServer* ServerSelection::next() {
  // The last attempt's server joins the tried list only when there is another attempt:
  // most requests make one, and need no list.
  if (last_ != nullptr) {
    tried_.push_back(last_);
    last_ = nullptr;
  }
  current_.reset();
  if (balancer_ == nullptr) return nullptr;
  if (attempts_ > static_cast<int>(balancer_->upstream().retries)) return nullptr;
  // The server the affinity cookie names, first: while it is up and can take the
  // connection the session stays there; otherwise the balancer chooses as usual.
  if (attempts_ == 0 && !affinity_.empty())
    current_ = balancer_->pick_affine(affinity_, steady_now_ms());
  if (!current_) current_ = balancer_->pick(key_hash_, tried_, steady_now_ms());
  if (!current_) return nullptr;
  last_ = current_.server();
  if (attempts_ > 0 && balancer_->metrics() != nullptr)
    balancer_->metrics()->upstream_retry(balancer_->upstream().name);
  ++attempts_;
  return &current_.server()->config;
}

void ServerSelection::failed(std::string_view why, std::string_view reason) {
  if (!current_) return;
  if (!reason.empty() && balancer_->metrics() != nullptr)
    balancer_->metrics()->upstream_connect_failed(balancer_->upstream().name, reason);
  balancer_->pool().record_failure(*current_.server(), why, steady_now_ms());
  current_.reset();
}

void ServerSelection::connected(double seconds) {
  if (current_ && balancer_->metrics() != nullptr)
    balancer_->metrics()->upstream_connected(balancer_->upstream().name, seconds);
}

bool gateway_failure(int status) {
  return status == 502 || status == 503 || status == 504;
}

ServerLease ServerSelection::succeeded(int status) {
  if (current_) {
    if (gateway_failure(status)) {
      balancer_->pool().record_failure(*current_.server(), "answered " + std::to_string(status),
                                       steady_now_ms());
    } else {
      Pool::record_success(*current_.server());
    }
  }
  return std::move(current_);
}

std::string ServerSelection::unavailable_reason() const {
  if (balancer_ == nullptr) return "no upstream server configured";
  return "no server of upstream " + balancer_->pool().name() +
         " can take the connection: " + balancer_->pool().describe_unavailable(steady_now_ms());
}

Balancers::Balancers(std::shared_ptr<UpstreamPools> pools, std::uint64_t seed,
                     metrics::WorkerMetrics* metrics)
    : pools_(std::move(pools)), seed_(seed), metrics_(metrics) {}

ServerSelection Balancers::select(const conf::Upstream& upstream, std::string_view client_ip,
                                  const http::RequestHead& request) {
  UpstreamBalancer* found = nullptr;
  for (auto& b : balancers_)
    if (&b->upstream() == &upstream) found = b.get();
  if (found == nullptr) {
    Pool* pool = pools_ ? pools_->find(upstream.name) : nullptr;
    if (pool == nullptr) return {};
    balancers_.push_back(std::make_unique<UpstreamBalancer>(
        upstream, *pool, mix64(seed_ + balancers_.size()), metrics_));
    found = balancers_.back().get();
  }
  std::uint64_t key_hash = 0;
  if (upstream.balancer == conf::Balancer::Hash)
    key_hash = stable_hash(hash_key_text(upstream.hash_key, client_ip, request));
  std::string affinity;
  if (!upstream.affinity_cookie.empty())
    if (auto v = request_cookie(request, upstream.affinity_cookie)) affinity.assign(*v);
  return ServerSelection(found, key_hash, std::move(affinity));
}

}  // namespace wsgate::proxy
