#include "gateway/systemd_notify.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace wsgate::gateway {

SystemdNotifier::SystemdNotifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr) return;
  const std::size_t length = std::strlen(path);
  // A path ("/run/systemd/notify") or an abstract name ("@/org/..."); the abstract
  // namespace is written with a leading NUL instead of '@'.
  if (length < 2 || length >= sizeof(address_.sun_path) || (path[0] != '/' && path[0] != '@'))
    return;
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, path, length);
  if (path[0] == '@') address_.sun_path[0] = '\0';
  address_length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) close(fd_);
}

bool SystemdNotifier::notify(std::string_view state) {
  if (fd_ < 0) return false;
  const ssize_t n = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                           reinterpret_cast<const sockaddr*>(&address_), address_length_);
  return n == static_cast<ssize_t>(state.size());
}

bool SystemdNotifier::ready(std::string_view status) {
  return notify("READY=1\nSTATUS=" + status_line(status));
}

bool SystemdNotifier::reloading() {
  // systemd 253's Type=notify-reload wants the CLOCK_MONOTONIC time of the reload
  // request with RELOADING=1; older ones ignore it.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  return notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
}

bool SystemdNotifier::status(std::string_view status) {
  return notify("STATUS=" + status_line(status));
}

bool SystemdNotifier::stopping(std::string_view status) {
  return notify("STOPPING=1\nSTATUS=" + status_line(status));
}

std::string status_line(std::string_view text) {
  std::string line(text);
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  return line;
}

}  // namespace wsgate::gateway
