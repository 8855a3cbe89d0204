#include "proxy/relay/receive_batching.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace wsgate::proxy {

void ReceiveBatching::update(int fd, uint64_t expected, std::size_t buffered) {
  const uint64_t to_arrive = expected > buffered ? expected - buffered : 0;
  set(fd, to_arrive >= 2 * static_cast<uint64_t>(kBatch) ? kBatch : 1);
}

void ReceiveBatching::reset(int fd) {
  set(fd, 1);
}

void ReceiveBatching::set(int fd, int lowat) {
  if (lowat == lowat_ || fd < 0) return;
  // A failure leaves the kernel's default (1): reads are merely smaller.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)) == 0) lowat_ = lowat;
}

}  // namespace wsgate::proxy
