// Large bodies read in large pieces. A fast reader of a TCP socket is woken for every few
// KiB that arrive: one readiness wake-up, a FIONREAD and a read each time (a 100 MiB
// download took 26,000 of each). SO_RCVLOWAT asks the kernel to report the socket
// readable only once `kBatch` bytes are queued, or at FIN or an error (tcp_poll).
//
// It is set only while at least twice that much is certain to arrive (the rest of a
// Content-Length body, of a chunk, or a body that ends with the close), so the end of a
// body never waits for bytes that will not come, and cleared before the socket carries
// anything else (the next request or response head). The option changes at most twice
// per body: small messages never pay for it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wsgate::proxy {

class ReceiveBatching {
 public:
  static constexpr int kBatch = 64 * 1024;

  // `expected`: input bytes certain to come (http1::BodyDecoder::bytes_expected), of
  // which `buffered` are already read.
  void update(int fd, uint64_t expected, std::size_t buffered);
  // Back to waking for every byte (before a head is read on the socket again).
  void reset(int fd);

 private:
  void set(int fd, int lowat);
  int lowat_ = 1;
};

}  // namespace wsgate::proxy
