#include "gateway/inherited_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gateway/listen_socket.h"
#include "metrics/log.h"

namespace wsgate::gateway {
namespace {

// sd_listen_fds(3): passed descriptors start at SD_LISTEN_FDS_START.
constexpr int kListenFdsStart = 3;

bool parse_number(const char* text, long long& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(text, &end, 10);
  return errno == 0 && *end == '\0' && out >= 0;
}

std::string describe(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return "fd " + std::to_string(fd);
  return "fd " + std::to_string(fd) + " (" +
         conf::describe(reinterpret_cast<sockaddr*>(&ss)).ip_port + ")";
}

}  // namespace

InheritedSockets::~InheritedSockets() {
  for (const Entry& e : entries_) close(e.fd);
}

void InheritedSockets::add(int fd, std::string origin) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  entries_.push_back({fd, std::move(origin)});
}

std::vector<std::vector<int>> InheritedSockets::take(const conf::HostPort& address,
                                                     unsigned workers) {
  std::vector<int> matching;
  std::string origin;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (is_listening_on(it->fd, address)) {
      matching.push_back(it->fd);
      origin = it->origin;
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  if (matching.empty() || workers == 0) return {};
  std::vector<std::vector<int>> out(workers);
  for (std::size_t i = 0; i < matching.size(); ++i) out[i % workers].push_back(matching[i]);
  for (unsigned w = 0; w < workers; ++w) {
    if (!out[w].empty()) continue;
    const int copy = fcntl(matching[w % matching.size()], F_DUPFD_CLOEXEC, 0);
    if (copy >= 0) out[w].push_back(copy);
  }
  log::info("listener " + to_string(address) + ": " + std::to_string(matching.size()) +
            " socket(s) from " + origin + ", not bound again");
  return out;
}

int InheritedSockets::take_one(const conf::HostPort& address) {
  std::vector<std::vector<int>> fds = take(address, 1);
  if (fds.empty()) return -1;
  for (std::size_t i = 1; i < fds[0].size(); ++i) close(fds[0][i]);
  return fds[0][0];
}

void InheritedSockets::close_unused() {
  for (const Entry& e : entries_) {
    log::warn("socket " + describe(e.fd) + " from " + e.origin +
              " matches no listener of the configuration: closed");
    close(e.fd);
  }
  entries_.clear();
}

std::vector<int> systemd_listen_fds() {
  long long pid = 0;
  long long count = 0;
  const bool for_us = parse_number(std::getenv("LISTEN_PID"), pid) &&
                      static_cast<pid_t>(pid) == getpid() &&
                      parse_number(std::getenv("LISTEN_FDS"), count);
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  std::vector<int> fds;
  if (!for_us) return fds;
  for (long long i = 0; i < count && i < 4096; ++i) {
    const int fd = kListenFdsStart + static_cast<int>(i);
    if (fcntl(fd, F_GETFD) < 0) {
      log::warn("LISTEN_FDS: fd " + std::to_string(fd) + " is not open");
      continue;
    }
    fds.push_back(fd);
  }
  return fds;
}

}  // namespace wsgate::gateway
