// The binary upgrade's messages (gateway/upgrade_channel.h) over a real SOCK_SEQPACKET
// pair: text with and without a descriptor, boundaries kept, hang-up and would-block.
#include "gateway/upgrade_channel.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <string>

using namespace wsgate::gateway;

namespace {

struct Pair {
  int a = -1;
  int b = -1;
  Pair() { REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, &a) == 0); }
  ~Pair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

ino_t inode_of(int fd) {
  struct stat st {};
  REQUIRE(fstat(fd, &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("upgrade channel: a descriptor travels with its message, boundaries kept") {
  Pair p;
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  std::string error;
  REQUIRE(send_upgrade_message(p.a, "SOCKET listener 127.0.0.1:8080", pipe_fds[0], error));
  REQUIRE(send_upgrade_message(p.a, "SOCKETS 1 42", -1, error));

  std::string text;
  int fd = -1;
  REQUIRE(receive_upgrade_message(p.b, text, fd, error) == UpgradeReceive::Message);
  CHECK(text == "SOCKET listener 127.0.0.1:8080");
  REQUIRE(fd >= 0);
  CHECK(fd != pipe_fds[0]);
  CHECK(inode_of(fd) == inode_of(pipe_fds[0]));  // the same pipe, another descriptor
  CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  close(fd);

  REQUIRE(receive_upgrade_message(p.b, text, fd, error) == UpgradeReceive::Message);
  CHECK(text == "SOCKETS 1 42");
  CHECK(fd == -1);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST_CASE("upgrade channel: nothing yet on a non-blocking socket, then the hang-up") {
  Pair p;
  fcntl(p.b, F_SETFL, O_NONBLOCK);
  std::string text;
  std::string error;
  int fd = -1;
  CHECK(receive_upgrade_message(p.b, text, fd, error) == UpgradeReceive::Again);
  close(p.a);
  p.a = -1;
  CHECK(receive_upgrade_message(p.b, text, fd, error) == UpgradeReceive::Closed);
  CHECK(fd == -1);
}

TEST_CASE("upgrade channel: a message longer than the limit fails, and its descriptor is closed") {
  Pair p;
  std::string error;
  const std::string long_text(kUpgradeMessageMax + 1, 'x');
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  REQUIRE(send_upgrade_message(p.a, long_text, pipe_fds[0], error));
  close(pipe_fds[0]);
  std::string text;
  int fd = -1;
  CHECK(receive_upgrade_message(p.b, text, fd, error) == UpgradeReceive::Failed);
  CHECK(error == "message too long");
  CHECK(fd == -1);
  // The passed read end is gone: the pipe's write end sees no reader.
  signal(SIGPIPE, SIG_IGN);
  CHECK(write(pipe_fds[1], "x", 1) == -1);
  close(pipe_fds[1]);
}
