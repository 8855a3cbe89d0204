// The TLS failure log's rate limit (tls/failure_log_limiter.h).
#include "tls/failure_log_limiter.h"

#include <doctest/doctest.h>

using wsgate::tls::FailureLogLimiter;

TEST_CASE("tls failure log: ten lines a second, the rest counted and reported later") {
  FailureLogLimiter limiter;
  int logged = 0;
  for (int i = 0; i < 25; ++i) {
    const FailureLogLimiter::Verdict v = limiter.on_failure(1000);
    logged += v.log_this ? 1 : 0;
    CHECK(v.report_count == 0);
  }
  CHECK(logged == FailureLogLimiter::kLinesPerSecond);
  CHECK(limiter.has_suppressed());
  // The next second's first failure reports the 15 suppressed and is logged itself.
  const FailureLogLimiter::Verdict next = limiter.on_failure(1001);
  CHECK(next.report_count == 15);
  CHECK(next.log_this);
  CHECK(limiter.take_suppressed() == 0);
}

TEST_CASE("tls failure log: the timer's report takes the count once") {
  FailureLogLimiter limiter;
  for (int i = 0; i < 12; ++i) limiter.on_failure(7);
  CHECK(limiter.take_suppressed() == 2);
  CHECK(limiter.take_suppressed() == 0);
  CHECK_FALSE(limiter.has_suppressed());
}
