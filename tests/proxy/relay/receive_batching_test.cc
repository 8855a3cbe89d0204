#include "proxy/relay/receive_batching.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

using wsgate::proxy::ReceiveBatching;

namespace {

int lowat(int fd) {
  int v = 0;
  socklen_t len = sizeof(v);
  REQUIRE(getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len) == 0);
  return v;
}

}  // namespace

TEST_CASE("receive batching: SO_RCVLOWAT only while twice the batch is certain to come") {
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  ReceiveBatching b;
  constexpr uint64_t kBatch = ReceiveBatching::kBatch;
  b.update(fds[0], 2 * kBatch - 1, 0);
  CHECK(lowat(fds[0]) == 1);  // the end of the body must not wait for bytes to come
  b.update(fds[0], 10 * kBatch, 0);
  CHECK(lowat(fds[0]) == ReceiveBatching::kBatch);
  // What is buffered already does not arrive any more.
  b.update(fds[0], 10 * kBatch, 9 * kBatch);
  CHECK(lowat(fds[0]) == 1);
  b.update(fds[0], UINT64_MAX, 0);  // a body that ends with the close
  CHECK(lowat(fds[0]) == ReceiveBatching::kBatch);
  b.reset(fds[0]);  // before a head is read on the socket again
  CHECK(lowat(fds[0]) == 1);
  close(fds[0]);
  close(fds[1]);
}
