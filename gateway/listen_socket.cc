#include "gateway/listen_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "conf/address.h"

namespace wsgate::gateway {

bool is_listening_on(int fd, const conf::HostPort& address) {
  sockaddr_storage want{};
  socklen_t want_length = 0;
  if (!conf::to_sockaddr(address, want, want_length)) return false;
  int type = 0;
  int accepting = 0;
  socklen_t n = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) != 0 || type != SOCK_STREAM) return false;
  n = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &n) != 0 || accepting == 0)
    return false;
  sockaddr_storage have{};
  socklen_t have_length = sizeof(have);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&have), &have_length) != 0) return false;
  if (have.ss_family != want.ss_family) return false;
  if (have.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(have);
    const auto& b = reinterpret_cast<const sockaddr_in&>(want);
    return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(have);
  const auto& b = reinterpret_cast<const sockaddr_in6&>(want);
  return a.sin6_port == b.sin6_port &&
         std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof(in6_addr)) == 0;
}

int open_listen_socket(const conf::HostPort& address, std::string& error, bool reuse_port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!conf::to_sockaddr(address, ss, len)) {
    error = "listener " + to_string(address) + ": not an IP address";
    return -1;
  }
  const int family = ss.ss_family;
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "listener " + to_string(address) + ": socket: " + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 1024) != 0) {
    error = "listener " + to_string(address) + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace wsgate::gateway
