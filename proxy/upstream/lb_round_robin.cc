// balancer = "round_robin": smooth weighted round robin over the eligible members.
// Connection counts are ignored, which suits short connections; for long-lived ones
// least_conn is the better default.
#include "proxy/upstream/lb_round_robin.h"

#include "proxy/upstream/load_balancer.h"

namespace wsgate::proxy {
namespace {

class RoundRobin final : public LoadBalancer {
 public:
  explicit RoundRobin(std::size_t members) : wrr_(members) {}

  std::optional<std::size_t> pick(std::span<const MemberLoad> now,
                                  std::uint64_t /*key_hash*/) override {
    return wrr_.pick([&](std::size_t i) { return now[i].eligible; },
                     [&](std::size_t i) { return now[i].weight; });
  }

 private:
  SmoothWeightedRoundRobin wrr_;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_round_robin(std::vector<Member> members) {
  return std::make_unique<RoundRobin>(members.size());
}

std::unique_ptr<LoadBalancer> make_load_balancer(conf::Balancer kind, std::vector<Member> members,
                                                 std::uint64_t seed) {
  switch (kind) {
    case conf::Balancer::RoundRobin:
      return make_round_robin(std::move(members));
    case conf::Balancer::LeastConn:
      return make_least_conn(std::move(members));
    case conf::Balancer::RandomTwo:
      return make_random_two(std::move(members), seed);
    case conf::Balancer::Hash:
      return make_hash(std::move(members));
  }
  return make_least_conn(std::move(members));
}

}  // namespace wsgate::proxy
