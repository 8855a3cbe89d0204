// Which failed TLS handshakes get a log line: at most kLinesPerSecond a second (per
// worker), so a flood of bad handshakes cannot flood the log; the rest are counted, and
// the count is reported once the second is over. Pure bookkeeping: the caller owns the
// clock, the log and the timer that reports the count when no later failure does.
#pragma once

#include <cstdint>
#include <ctime>

namespace wsgate::tls {

class FailureLogLimiter {
 public:
  static constexpr int kLinesPerSecond = 10;

  struct Verdict {
    bool log_this = false;      // write this failure's line
    uint64_t report_count = 0;  // first write "N more failures not logged" (0: none)
  };
  // A failure at wall-clock second `now`.
  Verdict on_failure(time_t now);
  // The suppressed count, to report now (and reset); 0 when there is nothing to say.
  uint64_t take_suppressed();
  bool has_suppressed() const { return suppressed_ != 0; }

 private:
  time_t second_ = 0;
  int logged_this_second_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace wsgate::tls
