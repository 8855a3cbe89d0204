// Configuration reloads as the admin endpoints see them (POST /reload's answer, and
// wsgate_config_reloads_total / wsgate_config_last_reload_success_timestamp_seconds).
// Written and read on the main thread only.
#pragma once

#include <cstdint>
#include <string>

namespace wsgate::metrics {

// The outcome of one reload: `message` is one line (what changed, or the config error
// as file:line:column: message).
struct ReloadResult {
  bool ok = false;
  std::string message;
};

struct ReloadStats {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  double last_success_unix = 0;  // seconds since the epoch; 0: none since the start
};

}  // namespace wsgate::metrics
