// balancer = "round_robin" (proxy/upstream/lb_round_robin.cc): smooth weighted round robin.
#include <doctest/doctest.h>

#include <cmath>

#include "proxy/upstream/load_balancer.h"
#include "tests/proxy/upstream/lb_test_util.h"

using namespace wsgate::proxy;
using namespace wsgate::proxy::test;

TEST_CASE("round_robin: weights 1:1:2 over 1000 picks land within 5 points of 25/25/50") {
  auto lb = make_round_robin(members({1, 1, 2}));
  const auto s = shares(*lb, all_eligible({1, 1, 2}), 1000);
  CHECK(std::abs(s[0] - 25) <= 5);
  CHECK(std::abs(s[1] - 25) <= 5);
  CHECK(std::abs(s[2] - 50) <= 5);
}

TEST_CASE("round_robin: smooth, the heavy server's picks are interleaved") {
  auto lb = make_round_robin(members({1, 1, 2}));
  const auto loads = all_eligible({1, 1, 2});
  std::vector<std::size_t> seq;
  for (int i = 0; i < 8; ++i) seq.push_back(*lb->pick(loads, 0));
  // Every window of 4 (the weights' total) has each light server once and the heavy
  // one twice (c a b c, not c c a b).
  for (int w = 0; w < 2; ++w) {
    int c[3] = {0, 0, 0};
    for (int i = 0; i < 4; ++i) ++c[seq[w * 4 + i]];
    CHECK(c[0] == 1);
    CHECK(c[1] == 1);
    CHECK(c[2] == 2);
  }
  CHECK(seq[0] == 2);
  CHECK(seq[1] != 2);
}

TEST_CASE("round_robin: equal weights alternate, ineligible members are skipped") {
  auto lb = make_round_robin(members({1, 1, 1}));
  auto loads = all_eligible({1, 1, 1});
  loads[1].eligible = false;
  for (int i = 0; i < 10; ++i) CHECK(*lb->pick(loads, 0) != 1);
  loads.assign(3, MemberLoad{false, 0});
  CHECK_FALSE(lb->pick(loads, 0).has_value());
}
