// plan_shedding (proxy/upstream/rebalancer.h): who sheds how many, and never more than needed.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "proxy/upstream/rebalancer.h"

using wsgate::proxy::plan_shedding;
using wsgate::proxy::ServerLoad;
using V = std::vector<std::size_t>;

TEST_CASE("scale-out: 45/45 and a new empty server shed down to the share, 15 + 15") {
  CHECK(plan_shedding({{45, 0, 1, true}, {45, 0, 1, true}, {0, 0, 1, true}}, 1.2) == V{15, 15, 0});
}

TEST_CASE("within factor x share: nothing") {
  // Fair share 30; 36 is exactly 1.2 x 30, not more.
  CHECK(plan_shedding({{36, 0, 1, true}, {30, 0, 1, true}, {24, 0, 1, true}}, 1.2) == V{0, 0, 0});
  CHECK(plan_shedding({{37, 0, 1, true}, {30, 0, 1, true}, {23, 0, 1, true}}, 1.2) == V{7, 0, 0});
  CHECK(plan_shedding({{30, 0, 1, true}, {30, 0, 1, true}, {30, 0, 1, true}}, 1.0) == V{0, 0, 0});
}

TEST_CASE("closes in flight count as gone: no second shedding") {
  // 45 held, 15 of them already closing: holds 30 = its share.
  CHECK(plan_shedding({{45, 15, 1, true}, {45, 15, 1, true}, {0, 0, 1, true}}, 1.2) == V{0, 0, 0});
  CHECK(plan_shedding({{45, 10, 1, true}, {45, 0, 1, true}, {0, 0, 1, true}}, 1.0) == V{5, 15, 0});
}

TEST_CASE("weights and unavailable servers") {
  // Weights 2:1: shares 60 and 30 of 90.
  CHECK(plan_shedding({{45, 0, 2, true}, {45, 0, 1, true}}, 1.2) == V{0, 15});
  // The third server is down: it is not counted, and nobody sheds toward it.
  CHECK(plan_shedding({{45, 0, 1, true}, {45, 0, 1, true}, {0, 0, 1, false}}, 1.2) == V{0, 0, 0});
  // A down server's connections are not in the total.
  CHECK(plan_shedding({{60, 0, 1, true}, {0, 0, 1, true}, {40, 0, 1, false}}, 1.2) == V{30, 0, 0});
  CHECK(plan_shedding({}, 1.2).empty());
  CHECK(plan_shedding({{0, 0, 1, true}, {0, 0, 1, true}}, 1.2) == V{0, 0});
}

TEST_CASE("ServerLease::mark_closing counts the connection as closing until it ends") {
  wsgate::conf::UpstreamServer config;
  config.host = "127.0.0.1";
  config.port = 1;
  auto server = std::make_shared<wsgate::proxy::ServerState>(config, 0);
  REQUIRE(server->try_acquire());
  REQUIRE(server->try_acquire());
  wsgate::proxy::ServerLease a(server), b(server);
  a.mark_closing();
  a.mark_closing();  // once per lease
  CHECK(server->closing.load() == 1);
  wsgate::proxy::ServerLease moved(std::move(a));  // the mark moves with the slot
  CHECK(server->closing.load() == 1);
  a.reset();
  CHECK(server->closing.load() == 1);
  moved.reset();
  CHECK(server->closing.load() == 0);
  CHECK(server->active.load() == 1);
  b = std::move(moved);  // an empty lease: b's slot is given back, nothing else changes
  CHECK(server->active.load() == 0);
  CHECK(server->closing.load() == 0);
}

TEST_CASE("clients shed by the last plan and not back yet: their total still counts") {
  // 45/45/0 shed 15 + 15; the 30 clients have not reconnected: 30/30/0 of an expected 90
  // is the fair share already, nothing more is shed.
  CHECK(plan_shedding({{30, 0, 1, true}, {30, 0, 1, true}, {0, 0, 1, true}}, 1.2, 90) ==
        V{0, 0, 0});
  // Without the expectation, 60 connections would look like 20 each: 10 + 10 more shed.
  CHECK(plan_shedding({{30, 0, 1, true}, {30, 0, 1, true}, {0, 0, 1, true}}, 1.2) == V{10, 10, 0});
  // A higher real total wins over the expectation.
  CHECK(plan_shedding({{60, 0, 1, true}, {30, 0, 1, true}, {0, 0, 1, true}}, 1.2, 60) ==
        V{30, 0, 0});
}
