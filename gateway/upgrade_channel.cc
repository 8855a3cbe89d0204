#include "gateway/upgrade_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wsgate::gateway {

bool send_upgrade_message(int sock, std::string_view text, int fd, std::string& error) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n = 0;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(text.size())) return true;
  error = n < 0 ? std::strerror(errno) : "short send";
  return false;
}

UpgradeReceive receive_upgrade_message(int sock, std::string& text, int& fd, std::string& error) {
  fd = -1;
  char buffer[kUpgradeMessageMax];
  iovec iov{buffer, sizeof(buffer)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = 0;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return UpgradeReceive::Again;
    error = std::strerror(errno);
    return UpgradeReceive::Failed;
  }
  // Every descriptor that came is taken, the first kept: none may leak.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int passed = -1;
      std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (fd < 0) {
        fd = passed;
      } else {
        close(passed);
      }
    }
  }
  if (n == 0) {
    if (fd >= 0) close(fd);
    fd = -1;
    return UpgradeReceive::Closed;
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    if (fd >= 0) close(fd);
    fd = -1;
    error = "message too long";
    return UpgradeReceive::Failed;
  }
  text.assign(buffer, static_cast<std::size_t>(n));
  return UpgradeReceive::Message;
}

}  // namespace wsgate::gateway
