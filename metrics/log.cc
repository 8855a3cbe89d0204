#include "metrics/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

#include "metrics/text_escape.h"

namespace wsgate::log {
namespace {

std::atomic<Level> g_min_level{Level::Info};
std::atomic<Format> g_format{Format::Text};

void emit(Level level, std::string_view message) {
  if (!enabled(level)) return;
  const std::string line =
      format_line(g_format.load(std::memory_order_relaxed), utc_timestamp(), level, message);
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace

const char* to_string(Level level) {
  switch (level) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "?";
}

void configure(Level min_level, Format format) {
  g_min_level.store(min_level, std::memory_order_relaxed);
  g_format.store(format, std::memory_order_relaxed);
}

bool enabled(Level level) {
  return level >= g_min_level.load(std::memory_order_relaxed);
}

std::string format_line(Format format, std::string_view timestamp, Level level,
                        std::string_view message) {
  std::string line;
  line.reserve(message.size() + 64);
  if (format == Format::Json) {
    // Escaped: a client's bytes quoted in a message cannot forge a line or a field.
    line.append("{\"ts\":");
    metrics::append_json_string(line, timestamp);
    line.append(",\"level\":\"").append(to_string(level)).append("\",\"msg\":");
    metrics::append_json_string(line, message);
    line.append("}\n");
    return line;
  }
  line.append(timestamp).append(" ").append(to_string(level)).append(" ");
  line.append(message).append("\n");
  return line;
}

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

void debug(std::string_view message) {
  emit(Level::Debug, message);
}
void info(std::string_view message) {
  emit(Level::Info, message);
}
void warn(std::string_view message) {
  emit(Level::Warn, message);
}
void error(std::string_view message) {
  emit(Level::Error, message);
}

}  // namespace wsgate::log
