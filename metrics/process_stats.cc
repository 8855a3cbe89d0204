#include "metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace wsgate::metrics {
namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double t = 0;
      in >> t;
      return t;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

uint64_t count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = readdir(dir))
    if (e->d_name[0] != '.') ++n;
  closedir(dir);
  return n > 0 ? n - 1 : 0;  // the directory stream's own fd is not the process's
}

}  // namespace

std::optional<ProcessStats> parse_proc_stat(std::string_view stat, long ticks_per_second,
                                            long page_size, double boot_time) {
  // proc(5): "pid (comm) state ppid ..."; comm may contain anything, so fields are
  // counted from the last ')'.
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  std::istringstream in{std::string(stat.substr(close + 1))};
  for (std::string f; in >> f;) fields.push_back(f);
  // Fields (1-based in proc(5)): 14 utime, 15 stime, 20 num_threads, 22 starttime,
  // 23 vsize, 24 rss (pages).
  constexpr std::size_t kFirst = 3;
  if (fields.size() < 24 - kFirst + 1) return std::nullopt;
  const auto field = [&](std::size_t n) {
    return std::strtoull(fields[n - kFirst].c_str(), nullptr, 10);
  };
  ProcessStats s;
  const auto ticks = static_cast<double>(ticks_per_second);
  s.cpu_seconds = static_cast<double>(field(14) + field(15)) / ticks;
  s.threads = field(20);
  s.start_time_seconds = boot_time + static_cast<double>(field(22)) / ticks;
  s.virtual_bytes = field(23);
  s.resident_bytes = field(24) * static_cast<uint64_t>(page_size);
  return s;
}

std::optional<ProcessStats> read_process_stats() {
  const std::string stat = read_file("/proc/self/stat");
  auto s = parse_proc_stat(stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_time_seconds());
  if (!s) return std::nullopt;
  s->open_fds = count_open_fds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) s->max_fds = limit.rlim_cur;
  return s;
}

}  // namespace wsgate::metrics
