// The process metrics, read from /proc/self at scrape time (Linux only).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace wsgate::metrics {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  uint64_t threads = 0;
};

// Reads /proc/self/{stat,fd} and the fd limit; nullopt if /proc is unreadable.
std::optional<ProcessStats> read_process_stats();

// Parses the text of /proc/<pid>/stat (after the command name, which may hold spaces
// and parentheses). `ticks_per_second` and `page_size` come from sysconf,
// `boot_time_seconds` from /proc/stat's btime. Exposed for tests.
std::optional<ProcessStats> parse_proc_stat(std::string_view stat, long ticks_per_second,
                                            long page_size, double boot_time_seconds);

}  // namespace wsgate::metrics
