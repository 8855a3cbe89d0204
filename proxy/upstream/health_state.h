// The health of one server as the active checks see it: an explicit two-state machine
// that flips only after `fall` consecutive failed probes (Up -> Down) or `rise`
// consecutive successful ones (Down -> Up), so one lost probe does not eject a server
// and one lucky probe does not bring back a broken one. Pure; no I/O, no clock.
#pragma once

#include <optional>

namespace wsgate::proxy {

enum class Health { Up, Down };
const char* to_string(Health h);

class HealthState {
 public:
  // A server starts Up: traffic flows at once, and a dead one is found within `fall`
  // probes (passive ejection and retries cover the time before).
  HealthState(unsigned rise, unsigned fall, Health initial = Health::Up)
      : rise_(rise), fall_(fall), health_(initial) {}

  // Records one probe's result; returns the new state when this result changed it.
  std::optional<Health> record(bool success);

  Health health() const { return health_; }
  unsigned streak() const { return streak_; }  // consecutive results against the state

 private:
  unsigned rise_, fall_;
  Health health_;
  unsigned streak_ = 0;
};

}  // namespace wsgate::proxy
