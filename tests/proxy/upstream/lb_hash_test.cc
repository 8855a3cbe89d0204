// balancer = "hash" (proxy/upstream/lb_hash.cc): weighted Maglev consistent hashing.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/stable_hash.h"
#include "tests/proxy/upstream/lb_test_util.h"

using namespace wsgate::proxy;
using namespace wsgate::proxy::test;

namespace {

std::vector<std::size_t> place(LoadBalancer& lb, const std::vector<MemberLoad>& loads, int keys) {
  std::vector<std::size_t> out;
  for (int k = 0; k < keys; ++k)
    out.push_back(*lb.pick(loads, stable_hash("user-" + std::to_string(k))));
  return out;
}

}  // namespace

TEST_CASE("hash: the stable hash is fixed (same on every instance and build)") {
  // Pinned values: if these change, deployed gateways would disagree with new ones.
  CHECK(stable_hash("") == stable_hash("", 0));
  CHECK(stable_hash("user-1") != stable_hash("user-2"));
  CHECK(stable_hash("user-1") == 0xc499b5f8a721df58ULL);
}

TEST_CASE("hash: 100 keys stay on their server across reconnects and across instances") {
  auto a = make_hash(members({1, 1, 1}));
  auto b = make_hash(members({1, 1, 1}));  // another gateway with the same config
  const auto loads = all_eligible({1, 1, 1});
  const auto first = place(*a, loads, 100);
  CHECK(place(*a, loads, 100) == first);
  CHECK(place(*b, loads, 100) == first);
  // And the keys are spread, not all on one server.
  int per[3] = {0, 0, 0};
  for (auto m : first) ++per[m];
  for (int c : per) CHECK(c > 15);
}

TEST_CASE("hash: removing one of 3 servers from the config moves at most 40% of keys") {
  auto three = make_hash(members({1, 1, 1}));
  std::vector<Member> two_members = members({1, 1, 1});
  two_members.erase(two_members.begin() + 1);  // drop 10.0.0.2
  auto two = make_hash(two_members);
  const int keys = 1000;
  const auto before = place(*three, all_eligible({1, 1, 1}), keys);
  const auto after = place(*two, all_eligible({1, 1}), keys);
  int moved = 0;
  for (int k = 0; k < keys; ++k) {
    const std::size_t was = before[k] == 0 ? 0 : before[k] == 2 ? 1 : 99;  // index in `two`
    if (after[k] != was) ++moved;
  }
  MESSAGE("keys moved when 1 of 3 servers left: " << moved / 10.0 << "%");
  CHECK(moved <= keys * 40 / 100);
  CHECK(moved >= keys * 25 / 100);  // the removed server's third must move
}

TEST_CASE("hash: an unhealthy server's keys move, nobody else's, and come back") {
  auto lb = make_hash(members({1, 1, 1}));
  auto loads = all_eligible({1, 1, 1});
  const auto before = place(*lb, loads, 1000);
  loads[0].eligible = false;
  const auto during = place(*lb, loads, 1000);
  for (int k = 0; k < 1000; ++k) {
    if (before[k] != 0) CHECK(during[k] == before[k]);
    CHECK(during[k] != 0);
  }
  loads[0].eligible = true;
  CHECK(place(*lb, loads, 1000) == before);
}

TEST_CASE("hash: weights 1:1:2 give the heavy server about half the keys") {
  auto lb = make_hash(members({1, 1, 2}));
  const auto s = shares(*lb, all_eligible({1, 1, 2}), 1000);
  CHECK(std::abs(s[0] - 25) <= 5);
  CHECK(std::abs(s[1] - 25) <= 5);
  CHECK(std::abs(s[2] - 50) <= 5);
}
