// The error log: one line per event on stderr, "ts level message" (text) or
// {"ts":...,"level":...,"msg":...} (json). Each line is written with a single write(2),
// so lines from different workers never interleave. Lines below the minimum level are
// not written (log_level; debug lines are not even formatted then: check enabled()).
#pragma once

#include <string>
#include <string_view>

namespace wsgate::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json };
const char* to_string(Level level);

// Thread-safe; takes effect for the next line (main thread at start and at each reload).
void configure(Level min_level, Format format);
bool enabled(Level level);

void debug(std::string_view message);
void info(std::string_view message);
void warn(std::string_view message);
void error(std::string_view message);

// One line as written, newline included.
std::string format_line(Format format, std::string_view timestamp, Level level,
                        std::string_view message);

// The current UTC time as "2026-11-21T20:00:00.000Z" (the error and access logs' format).
std::string utc_timestamp();

}  // namespace wsgate::log
