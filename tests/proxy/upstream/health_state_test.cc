// Active health state (proxy/upstream/health_state.cc): rise/fall counting.
#include "proxy/upstream/health_state.h"

#include "proxy/upstream/health_probe.h"

#include <doctest/doctest.h>

using wsgate::proxy::Health;
using wsgate::proxy::HealthState;

TEST_CASE("health: up goes down only after `fall` consecutive failures") {
  HealthState s(2, 3);
  CHECK(s.health() == Health::Up);
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(true));  // a success in between starts the count again
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(false));
  CHECK(s.health() == Health::Up);
  const auto changed = s.record(false);
  REQUIRE(changed);
  CHECK(*changed == Health::Down);
  CHECK(s.health() == Health::Down);
  CHECK_FALSE(s.record(false));  // staying down is no transition
}

TEST_CASE("health: down comes back only after `rise` consecutive successes") {
  HealthState s(2, 1, Health::Down);
  CHECK_FALSE(s.record(true));
  CHECK_FALSE(s.record(false));  // broken streak
  CHECK_FALSE(s.record(true));
  CHECK(s.health() == Health::Down);
  const auto changed = s.record(true);
  REQUIRE(changed);
  CHECK(*changed == Health::Up);
  // fall = 1: a single failure takes it down again.
  CHECK(s.record(false) == Health::Down);
}

TEST_CASE("health: rise = fall = 1 follows every result") {
  HealthState s(1, 1);
  CHECK(s.record(false) == Health::Down);
  CHECK(s.record(true) == Health::Up);
  CHECK_FALSE(s.record(true));
}

TEST_CASE("http health check: 2xx and 3xx are healthy unless expect_status says otherwise") {
  wsgate::conf::HealthCheck check;
  check.type = wsgate::conf::HealthCheck::Type::Http;
  for (const int status : {200, 204, 301, 304, 399})
    CHECK(wsgate::proxy::http_check_healthy(check, status));
  for (const int status : {400, 404, 500, 503})
    CHECK_FALSE(wsgate::proxy::http_check_healthy(check, status));
  check.expect_status = {200, 418};
  CHECK(wsgate::proxy::http_check_healthy(check, 418));
  CHECK(wsgate::proxy::http_check_healthy(check, 200));
  CHECK_FALSE(wsgate::proxy::http_check_healthy(check, 204));
}
