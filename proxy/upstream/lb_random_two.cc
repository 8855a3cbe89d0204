// balancer = "random_two": the power of two choices (Mitzenmacher). Two distinct
// eligible members are drawn at random in proportion to their weights; the one with
// fewer active connections per unit of weight wins. Nearly as even as least_conn, but
// no scan-wide minimum: many gateways deciding at once do not all pile onto the same
// momentarily least-loaded server.
#include <random>

#include "proxy/upstream/load_balancer.h"

namespace wsgate::proxy {
namespace {

class RandomTwo final : public LoadBalancer {
 public:
  explicit RandomTwo(std::uint64_t seed) : rng_(seed) {}

  std::optional<std::size_t> pick(std::span<const MemberLoad> now,
                                  std::uint64_t /*key_hash*/) override {
    const auto first = draw(now, std::nullopt);
    if (!first) return std::nullopt;
    const auto second = draw(now, first);
    if (!second) return first;
    // Fewer connections per weight wins; a tie goes to the first draw (itself random).
    const std::uint64_t a = std::uint64_t{now[*first].active} * now[*second].weight;
    const std::uint64_t b = std::uint64_t{now[*second].active} * now[*first].weight;
    return b < a ? second : first;
  }

 private:
  // One eligible member other than `except`, chosen with probability weight / total.
  std::optional<std::size_t> draw(std::span<const MemberLoad> now,
                                  std::optional<std::size_t> except) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < now.size(); ++i)
      if (now[i].eligible && i != except) total += now[i].weight;
    if (total == 0) return std::nullopt;
    std::uint64_t ticket = std::uniform_int_distribution<std::uint64_t>(0, total - 1)(rng_);
    for (std::size_t i = 0; i < now.size(); ++i) {
      if (!now[i].eligible || i == except) continue;
      if (ticket < now[i].weight) return i;
      ticket -= now[i].weight;
    }
    return std::nullopt;  // unreachable: ticket < total
  }

  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_random_two(std::vector<Member> members, std::uint64_t seed) {
  (void)members;  // the weights arrive with every pick (MemberLoad::weight)
  return std::make_unique<RandomTwo>(seed);
}

}  // namespace wsgate::proxy
