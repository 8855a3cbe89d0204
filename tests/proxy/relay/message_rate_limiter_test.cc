// max_message_rate: a burst at once, then the rate.
#include "proxy/relay/message_rate_limiter.h"

#include <doctest/doctest.h>

using wsgate::proxy::MessageRateLimiter;

namespace {
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1000 * kMs;
}  // namespace

TEST_CASE("a full bucket takes `burst` messages at once, then one per 1/rate") {
  MessageRateLimiter l(10, 3);  // one per 100 ms
  const int64_t t0 = 1'700'000'000 * kSec;
  CHECK(l.allow(t0));
  CHECK(l.allow(t0));
  CHECK(l.allow(t0));
  CHECK_FALSE(l.allow(t0));
  CHECK_FALSE(l.allow(t0 + 99 * kMs));
  CHECK(l.allow(t0 + 100 * kMs));
  CHECK_FALSE(l.allow(t0 + 150 * kMs));
  // A quiet second refills the bucket, never beyond the burst.
  const int64_t t1 = t0 + 5 * kSec;
  CHECK(l.allow(t1));
  CHECK(l.allow(t1));
  CHECK(l.allow(t1));
  CHECK_FALSE(l.allow(t1));
}

TEST_CASE("the default burst is one second's worth") {
  MessageRateLimiter l(50, 0);
  int allowed = 0;
  for (int i = 0; i < 200; ++i) allowed += l.allow(kSec) ? 1 : 0;
  CHECK(allowed == 50);
}

TEST_CASE("steady traffic at the rate is never refused, faster traffic is") {
  MessageRateLimiter at_rate(100, 1);
  bool all = true;
  for (int i = 0; i < 1000; ++i) all = all && at_rate.allow(kSec + i * 10 * kMs);
  CHECK(all);
  MessageRateLimiter faster(100, 1);
  int refused = 0;
  for (int i = 0; i < 1000; ++i) refused += faster.allow(kSec + i * 9 * kMs) ? 0 : 1;
  CHECK(refused > 50);
}

TEST_CASE("a clock that steps back does not lock the client out") {
  MessageRateLimiter l(10, 1);
  const int64_t t0 = 1000 * kSec;
  CHECK(l.allow(t0));
  CHECK_FALSE(l.allow(t0 + 10 * kMs));
  // The wall clock steps back an hour: the bucket moves with it.
  const int64_t back = t0 - 3600 * kSec;
  CHECK_FALSE(l.allow(back + 20 * kMs));
  CHECK(l.allow(back + 110 * kMs));
}
