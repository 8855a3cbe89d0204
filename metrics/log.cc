#include "metrics/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <ctime>
#include <string>

namespace wsgate::log {
namespace {

void emit(std::string_view level, std::string_view message) {
  std::string line = utc_timestamp();
  line.append(" ").append(level).append(" ").append(message).append("\n");
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace

std::string utc_timestamp() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm utc{};
  gmtime_r(&tv.tv_sec, &utc);
  char ts[40];
  const std::size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(ts + n, sizeof(ts) - n, ".%03dZ", static_cast<int>(tv.tv_usec / 1000));
  return ts;
}

void info(std::string_view message) {
  emit("info", message);
}
void warn(std::string_view message) {
  emit("warn", message);
}
void error(std::string_view message) {
  emit("error", message);
}

}  // namespace wsgate::log
