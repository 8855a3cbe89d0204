#include "gateway/fd_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace wsgate::gateway {
namespace {

std::string text(rlim_t v) {
  return v == RLIM_INFINITY ? "unlimited" : std::to_string(v);
}

}  // namespace

std::string raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return std::string("open file limit unknown: getrlimit: ") + std::strerror(errno);
  const rlim_t was = limit.rlim_cur;
  rlim_t want = limit.rlim_max;
  if (want == RLIM_INFINITY) {
    // Linux refuses an unlimited RLIMIT_NOFILE; fs.nr_open is the most it takes.
    unsigned long nr_open = 1024 * 1024;
    std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
    want = static_cast<rlim_t>(nr_open);
  }
  if (want <= was)
    return "open file limit " + text(was) + " (the hard limit; raise it to serve more)";
  limit.rlim_cur = want;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
    return "open file limit " + text(was) + ", could not raise it to " + text(want) + ": " +
           std::strerror(errno);
  return "open file limit raised from " + text(was) + " to " + text(want) + " (the hard limit)";
}

}  // namespace wsgate::gateway
