// The route's max_message_rate for one client: a token bucket of `burst` messages that
// refills at `rate` per second, kept as a theoretical arrival time (GCRA): one integer
// compare and add per message, no refill arithmetic, no allocation. Time comes from the
// caller (the loop's cached clock), so counting reads no clock.
#pragma once

#include <algorithm>
#include <cstdint>

namespace wsgate::proxy {

class MessageRateLimiter {
 public:
  // rate: messages per second, > 0; burst: messages at once, > 0 (0 = rate).
  MessageRateLimiter(uint32_t rate, uint32_t burst)
      : interval_ns_(1'000'000'000 / static_cast<int64_t>(rate)),
        tolerance_ns_(interval_ns_ * (static_cast<int64_t>(burst == 0 ? rate : burst) - 1)) {}

  // A message starts at `now_ns` (any monotonic-enough nanosecond count). False: over
  // the rate; the message is not counted.
  bool allow(int64_t now_ns) {
    // A clock that went backwards (a wall-clock step) moves the bucket back with it.
    if (now_ns < last_ns_) tat_ns_ -= last_ns_ - now_ns;
    last_ns_ = now_ns;
    const int64_t tat = std::max(tat_ns_, now_ns);
    if (tat - now_ns > tolerance_ns_) return false;
    tat_ns_ = tat + interval_ns_;
    return true;
  }

 private:
  int64_t interval_ns_;             // one message's worth of time
  int64_t tolerance_ns_;            // how far ahead of now the bucket may run (burst - 1 messages)
  int64_t tat_ns_ = INT64_MIN / 2;  // when the bucket is next full ("theoretical arrival")
  int64_t last_ns_ = INT64_MIN / 2;
};

}  // namespace wsgate::proxy
