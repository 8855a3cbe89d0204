#include "tls/failure_log_limiter.h"

namespace wsgate::tls {

FailureLogLimiter::Verdict FailureLogLimiter::on_failure(time_t now) {
  Verdict v;
  if (now != second_) {
    v.report_count = take_suppressed();
    second_ = now;
    logged_this_second_ = 0;
  }
  if (logged_this_second_ < kLinesPerSecond) {
    ++logged_this_second_;
    v.log_this = true;
  } else {
    ++suppressed_;
  }
  return v;
}

uint64_t FailureLogLimiter::take_suppressed() {
  const uint64_t n = suppressed_;
  suppressed_ = 0;
  return n;
}

}  // namespace wsgate::tls
