// The error log: one line per event on stderr, "ts level message". Each line is written
// with a single write(2), so lines from different workers never interleave.
#pragma once

#include <string>
#include <string_view>

namespace wsgate::log {

void info(std::string_view message);
void warn(std::string_view message);
void error(std::string_view message);

// The current UTC time as "2026-11-21T20:00:00.000Z" (the error and access logs' format).
std::string utc_timestamp();

}  // namespace wsgate::log
