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

int open_listen_socket(const conf::HostPort& address, std::string& error) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
      inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(address.port);
    len = sizeof(sockaddr_in);
  } else if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
             inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port);
    len = sizeof(sockaddr_in6);
  } else {
    error = "listener " + to_string(address) + ": not an IP address";
    return -1;
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "listener " + to_string(address) + ": socket: " + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 1024) != 0) {
    error = "listener " + to_string(address) + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace wsgate::gateway
