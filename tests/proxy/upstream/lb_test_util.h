// Helpers for the balancer tests: members with weights, an all-eligible load snapshot,
// and counting picks.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "proxy/upstream/load_balancer.h"

namespace wsgate::proxy::test {

inline std::vector<Member> members(const std::vector<std::uint32_t>& weights) {
  std::vector<Member> out;
  for (std::size_t i = 0; i < weights.size(); ++i)
    out.push_back({"10.0.0." + std::to_string(i + 1) + ":9000", weights[i]});
  return out;
}

// Every member eligible, idle, at its configured weight.
inline std::vector<MemberLoad> all_eligible(const std::vector<std::uint32_t>& weights) {
  std::vector<MemberLoad> out;
  for (std::uint32_t w : weights) out.push_back(MemberLoad{true, 0, w});
  return out;
}

// Share of `n` picks per member, in percent, with `loads` fixed.
inline std::vector<double> shares(LoadBalancer& lb, const std::vector<MemberLoad>& loads, int n) {
  std::vector<int> count(loads.size(), 0);
  for (int i = 0; i < n; ++i) {
    const auto m = lb.pick(loads, static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
    if (m) ++count[*m];
  }
  std::vector<double> out;
  for (int c : count) out.push_back(100.0 * c / n);
  return out;
}

}  // namespace wsgate::proxy::test
