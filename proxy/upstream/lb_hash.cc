// balancer = "hash": consistent hashing with a weighted Maglev table (Eisenbud et al.,
// NSDI 2016; weights as in Envoy's MaglevTable). Each member fills the slots of its
// own permutation of the table in turn, taking turns in proportion to its weight, so
// every member owns about weight/total of the slots, scattered over the table. A key
// hashes to a slot; the slot's owner serves it.
//
// Properties the tests check (tests/proxy/lb_hash_test.cc):
//  - the table depends only on the members' ids ("host:port" as configured) and
//    weights, hashed with stable_hash: every instance with the same config agrees;
//  - a member that is unhealthy or full is skipped by walking on to the next slots, so
//    only its own keys move (and they come back when it does);
//  - a member removed from the config changes the table only a little (Maglev's
//    minimal disruption): about 1/N of the keys move.
#include <algorithm>

#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/stable_hash.h"

namespace wsgate::proxy {
namespace {

// A prime (the permutations need it), large against any realistic member count so the
// share of slots per member is close to its weight.
constexpr std::size_t kTableSize = 65537;
constexpr std::uint32_t kEmpty = UINT32_MAX;

class MaglevHash final : public LoadBalancer {
 public:
  explicit MaglevHash(const std::vector<Member>& members) : table_(kTableSize, kEmpty) {
    if (members.empty()) return;
    struct Build {
      std::uint64_t offset, skip, next = 0, target = 0;
      std::uint32_t weight;
    };
    std::vector<Build> build;
    std::uint32_t max_weight = 1;
    for (const auto& m : members) {
      build.push_back({stable_hash(m.id, 1) % kTableSize,
                       stable_hash(m.id, 2) % (kTableSize - 1) + 1, 0, 0, m.weight});
      max_weight = std::max(max_weight, m.weight);
    }
    std::size_t filled = 0;
    for (std::uint64_t round = 1; filled < kTableSize; ++round) {
      for (std::size_t i = 0; i < build.size() && filled < kTableSize; ++i) {
        Build& b = build[i];
        // A member of the largest weight places a slot every round, one of a third of
        // it every third round.
        if (round * b.weight < b.target) continue;
        b.target += max_weight;
        std::uint64_t slot = (b.offset + b.skip * b.next) % kTableSize;
        while (table_[slot] != kEmpty) slot = (b.offset + b.skip * ++b.next) % kTableSize;
        table_[slot] = static_cast<std::uint32_t>(i);
        ++b.next;
        ++filled;
      }
    }
  }

  std::optional<std::size_t> pick(std::span<const MemberLoad> now,
                                  std::uint64_t key_hash) override {
    if (std::none_of(now.begin(), now.end(), [](const MemberLoad& m) { return m.eligible; }))
      return std::nullopt;
    // Some member is eligible and every member owns slots, so the walk ends.
    for (std::size_t step = 0, slot = key_hash % kTableSize; step < kTableSize;
         ++step, slot = (slot + 1) % kTableSize) {
      const std::uint32_t owner = table_[slot];
      if (owner < now.size() && now[owner].eligible) return owner;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::uint32_t> table_;  // slot -> member index
};

}  // namespace

std::unique_ptr<LoadBalancer> make_hash(std::vector<Member> members) {
  return std::make_unique<MaglevHash>(members);
}

}  // namespace wsgate::proxy
