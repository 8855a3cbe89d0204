// balancer = "least_conn" (the default): the eligible member with the fewest active
// connections per unit of weight (active / weight) wins; members that tie share the
// pick by smooth weighted round robin. The tie rule matters: when every server is idle
// (short connections, or a fresh start) a plain "first minimum" would send everything
// to one server, and a "(active + 1) / weight" score would send everything to the
// heaviest; round robin among the tied keeps the weights both for short and for
// long-lived connections.
//
// The counts are the pool's (all workers, see upstream_pool.h), so a server loaded by
// one worker's long-lived connections is avoided by the others too.
#include "proxy/upstream/lb_round_robin.h"
#include "proxy/upstream/load_balancer.h"

namespace wsgate::proxy {
namespace {

class LeastConn final : public LoadBalancer {
 public:
  explicit LeastConn(std::size_t members) : wrr_(members) {}

  std::optional<std::size_t> pick(std::span<const MemberLoad> now,
                                  std::uint64_t /*key_hash*/) override {
    // a/wa < b/wb  <=>  a*wb < b*wa (no division, exact).
    const auto less = [&](std::size_t a, std::size_t b) {
      return std::uint64_t{now[a].active} * now[b].weight <
             std::uint64_t{now[b].active} * now[a].weight;
    };
    std::optional<std::size_t> least;
    for (std::size_t i = 0; i < now.size(); ++i)
      if (now[i].eligible && (!least || less(i, *least))) least = i;
    if (!least) return std::nullopt;
    const std::size_t m = *least;
    return wrr_.pick([&](std::size_t i) { return now[i].eligible && !less(m, i); },
                     [&](std::size_t i) { return now[i].weight; });
  }

 private:
  SmoothWeightedRoundRobin wrr_;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_least_conn(std::vector<Member> members) {
  return std::make_unique<LeastConn>(members.size());
}

}  // namespace wsgate::proxy
