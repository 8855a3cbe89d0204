// Inherited listening sockets (gateway/inherited_sockets.h): matched to listeners by the
// address they are bound to, every one of an address given to some worker, workers
// without one sharing by dup(); sd_listen_fds(3)'s LISTEN_PID rule.
#include "gateway/inherited_sockets.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

#include "gateway/listen_socket.h"

using namespace wsgate;
using namespace wsgate::gateway;

namespace {

// A listening socket on 127.0.0.1 with a port the kernel picks.
int listening(conf::HostPort& address) {
  std::string error;
  const int fd = open_listen_socket({"127.0.0.1", 0}, error);
  REQUIRE(fd >= 0);
  sockaddr_in in{};
  socklen_t len = sizeof(in);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len) == 0);
  address = {"127.0.0.1", ntohs(in.sin_port)};
  return fd;
}

ino_t inode_of(int fd) {
  struct stat st {};
  REQUIRE(fstat(fd, &st) == 0);
  return st.st_ino;
}

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) >= 0;
}

}  // namespace

TEST_CASE("is_listening_on: family, address and port must all match") {
  conf::HostPort address;
  const int fd = listening(address);
  CHECK(is_listening_on(fd, address));
  CHECK_FALSE(is_listening_on(fd, {"127.0.0.2", address.port}));
  CHECK_FALSE(is_listening_on(fd, {"127.0.0.1", static_cast<uint16_t>(address.port + 1)}));
  CHECK_FALSE(is_listening_on(fd, {"::1", address.port}));
  CHECK_FALSE(is_listening_on(fd, {"localhost", address.port}));
  const int unbound = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_FALSE(is_listening_on(unbound, {"0.0.0.0", 0}));  // not listening
  close(unbound);
  close(fd);
}

TEST_CASE("take: more sockets than workers are all used, fewer are shared by dup") {
  conf::HostPort a;
  conf::HostPort b;
  const int a1 = listening(a);
  std::string error;
  const int a2 = open_listen_socket(a, error);  // SO_REUSEPORT: a second socket for a
  const int a3 = open_listen_socket(a, error);
  REQUIRE(a2 >= 0);
  REQUIRE(a3 >= 0);
  const int b1 = listening(b);

  InheritedSockets inherited;
  inherited.add(b1, "test");
  inherited.add(a1, "test");
  inherited.add(a2, "test");
  inherited.add(a3, "test");

  // Three sockets of `a`, two workers: one worker holds two, none is dropped.
  const auto for_a = inherited.take(a, 2);
  REQUIRE(for_a.size() == 2);
  CHECK(for_a[0].size() + for_a[1].size() == 3);
  CHECK_FALSE(for_a[0].empty());
  CHECK_FALSE(for_a[1].empty());
  std::set<int> given;
  for (const auto& w : for_a) given.insert(w.begin(), w.end());
  CHECK(given == std::set<int>{a1, a2, a3});

  // One socket of `b`, three workers: the others get the same socket by dup().
  const auto for_b = inherited.take(b, 3);
  REQUIRE(for_b.size() == 3);
  CHECK(for_b[0] == std::vector<int>{b1});
  for (int w = 1; w < 3; ++w) {
    REQUIRE(for_b[w].size() == 1);
    CHECK(for_b[w][0] != b1);
    CHECK(inode_of(for_b[w][0]) == inode_of(b1));
  }
  CHECK(inherited.empty());
  CHECK(inherited.take(a, 2).empty());  // taken already
  for (const auto& w : for_a)
    for (int fd : w) close(fd);
  for (const auto& w : for_b)
    for (int fd : w) close(fd);
}

TEST_CASE("take_one and close_unused") {
  conf::HostPort a;
  conf::HostPort other;
  const int a1 = listening(a);
  const int o1 = listening(other);
  InheritedSockets inherited;
  inherited.add(a1, "test");
  inherited.add(o1, "test");
  CHECK(inherited.take_one({"127.0.0.1", 1}) == -1);
  CHECK(inherited.take_one(a) == a1);
  inherited.close_unused();
  CHECK(inherited.empty());
  CHECK_FALSE(is_open(o1));
  CHECK(is_open(a1));
  close(a1);
}

TEST_CASE("systemd_listen_fds: only for the process LISTEN_PID names, variables unset") {
  setenv("LISTEN_PID", std::to_string(getpid() + 1).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  CHECK(systemd_listen_fds().empty());
  CHECK(std::getenv("LISTEN_PID") == nullptr);
  CHECK(std::getenv("LISTEN_FDS") == nullptr);

  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "x", 1);
  CHECK(systemd_listen_fds().empty());

  // fd 3 is whatever the test runner has there (or nothing): only an open one counts.
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  const std::vector<int> fds = systemd_listen_fds();
  CHECK(fds.size() == (is_open(3) ? 1u : 0u));
  CHECK(std::getenv("LISTEN_FDS") == nullptr);
}
