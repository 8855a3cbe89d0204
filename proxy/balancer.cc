#include "proxy/balancer.h"

#include "proxy/hash_key.h"
#include "proxy/stable_hash.h"

namespace wsgate::proxy {

UpstreamBalancer::UpstreamBalancer(const conf::Upstream& upstream, Pool& pool, std::uint64_t seed)
    : upstream_(upstream), pool_(pool) {
  std::vector<Member> primary, backup;
  for (std::size_t i = 0; i < upstream.servers.size(); ++i) {
    const conf::UpstreamServer& s = upstream.servers[i];
    (s.backup ? backup : primary).push_back({s.text, s.weight});
    (s.backup ? backup_ : primary_).servers.push_back(i);
  }
  primary_.lb = make_load_balancer(upstream.balancer, std::move(primary), seed);
  backup_.lb = make_load_balancer(upstream.balancer, std::move(backup), mix64(seed));
}

ServerLease UpstreamBalancer::pick(std::uint64_t key_hash, const std::vector<bool>& tried,
                                   std::int64_t now_ms) {
  if (ServerLease lease = pick_in(primary_, key_hash, tried, now_ms)) return lease;
  return pick_in(backup_, key_hash, tried, now_ms);
}

ServerLease UpstreamBalancer::pick_in(Group& group, std::uint64_t key_hash,
                                      const std::vector<bool>& tried, std::int64_t now_ms) {
  loads_.assign(group.servers.size(), MemberLoad{});
  for (std::size_t m = 0; m < group.servers.size(); ++m) {
    const std::size_t i = group.servers[m];
    const ServerState& s = pool_.server(i);
    loads_[m].active = s.active.load(std::memory_order_relaxed);
    loads_[m].weight = pool_.effective_weight(i, now_ms);
    const bool full = s.config.max_connections != 0 && loads_[m].active >= s.config.max_connections;
    loads_[m].eligible = !tried[i] && !full && pool_.available(i, now_ms);
  }
  // Another worker may take the last slot between the snapshot and try_acquire: then
  // that server is out for this pick and the balancer chooses again (at most N times).
  for (std::size_t round = 0; round < group.servers.size(); ++round) {
    const auto m = group.lb->pick(loads_, key_hash);
    if (!m) break;
    const std::size_t i = group.servers[*m];
    if (pool_.server(i).try_acquire()) return ServerLease(&pool_.server(i), i);
    loads_[*m].eligible = false;
  }
  return {};
}

ServerSelection::ServerSelection(UpstreamBalancer* balancer, std::uint64_t key_hash)
    : balancer_(balancer), key_hash_(key_hash) {
  if (balancer_ != nullptr) tried_.assign(balancer_->pool().size(), false);
}

const conf::UpstreamServer* ServerSelection::next() {
  current_.reset();
  if (balancer_ == nullptr) return nullptr;
  if (attempts_ > static_cast<int>(balancer_->upstream().retries)) return nullptr;
  current_ = balancer_->pick(key_hash_, tried_, steady_now_ms());
  if (!current_) return nullptr;
  tried_[current_.index()] = true;
  ++attempts_;
  return &current_.server()->config;
}

void ServerSelection::failed(std::string_view why) {
  if (!current_) return;
  balancer_->pool().record_failure(current_.index(), why, steady_now_ms());
  current_.reset();
}

ServerLease ServerSelection::succeeded() {
  if (current_) balancer_->pool().record_success(current_.index());
  return std::move(current_);
}

std::string ServerSelection::unavailable_reason() const {
  if (balancer_ == nullptr) return "no upstream server configured";
  return "no server of upstream " + balancer_->pool().name() +
         " can take the connection: " + balancer_->pool().describe_unavailable(steady_now_ms());
}

Balancers::Balancers(std::shared_ptr<UpstreamPools> pools, std::uint64_t seed)
    : pools_(std::move(pools)), seed_(seed) {}

ServerSelection Balancers::select(const conf::Upstream& upstream, std::string_view client_ip,
                                  const http1::RequestHead& head) {
  UpstreamBalancer* found = nullptr;
  for (auto& b : balancers_)
    if (&b->upstream() == &upstream) found = b.get();
  if (found == nullptr) {
    Pool* pool = pools_ ? pools_->find(upstream.name) : nullptr;
    if (pool == nullptr || pool->size() != upstream.servers.size()) return {};
    balancers_.push_back(
        std::make_unique<UpstreamBalancer>(upstream, *pool, mix64(seed_ + balancers_.size())));
    found = balancers_.back().get();
  }
  std::uint64_t key_hash = 0;
  if (upstream.balancer == conf::Balancer::Hash)
    key_hash = stable_hash(hash_key_text(upstream.hash_key, client_ip, head));
  return ServerSelection(found, key_hash);
}

}  // namespace wsgate::proxy
