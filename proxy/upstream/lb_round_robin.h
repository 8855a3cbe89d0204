// Smooth weighted round robin (the nginx algorithm), shared by the round_robin balancer
// and by least_conn to break ties. Each pick adds every candidate's weight to its
// current value, takes the largest, and subtracts the candidates' total from it: over
// any window the picks follow the weights and are interleaved (1:1:2 gives c a b c ...,
// never a a b b). Per-worker state; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace wsgate::proxy {

class SmoothWeightedRoundRobin {
 public:
  explicit SmoothWeightedRoundRobin(std::size_t members) : current_(members, 0) {}

  // Picks among the indexes for which candidate(i) is true, weighing each by weight(i)
  // (its effective weight now); nullopt when there is none.
  template <class Candidate, class Weight>
  std::optional<std::size_t> pick(Candidate&& candidate, Weight&& weight) {
    std::optional<std::size_t> best;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < current_.size(); ++i) {
      if (!candidate(i)) continue;
      const std::int64_t w = weight(i);
      current_[i] += w;
      total += w;
      if (!best || current_[i] > current_[*best]) best = i;
    }
    if (best) current_[*best] -= total;
    return best;
  }

 private:
  std::vector<std::int64_t> current_;
};

}  // namespace wsgate::proxy
