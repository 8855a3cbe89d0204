#include "proxy/upstream/health_state.h"

namespace wsgate::proxy {

const char* to_string(Health h) {
  return h == Health::Up ? "up" : "down";
}

std::optional<Health> HealthState::record(bool success) {
  // A result that agrees with the current state clears the streak of the other kind.
  if (success == (health_ == Health::Up)) {
    streak_ = 0;
    return std::nullopt;
  }
  ++streak_;
  if (streak_ < (health_ == Health::Up ? fall_ : rise_)) return std::nullopt;
  health_ = health_ == Health::Up ? Health::Down : Health::Up;
  streak_ = 0;
  return health_;
}

}  // namespace wsgate::proxy
