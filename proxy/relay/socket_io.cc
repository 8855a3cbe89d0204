#include "proxy/relay/socket_io.h"

#include <event2/buffer.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace wsgate::proxy {

ReadOutcome read_socket(evutil_socket_t s, evbuffer* in, std::size_t max) {
  std::array<evbuffer_iovec, 2> vec{};
  const int n = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(max), vec.data(), 2);
  if (n <= 0) return ReadOutcome::Error;
  std::array<iovec, 2> iov{};
  for (int i = 0; i < n; ++i)
    iov[static_cast<std::size_t>(i)] = {vec[static_cast<std::size_t>(i)].iov_base,
                                        vec[static_cast<std::size_t>(i)].iov_len};
  const ssize_t got = readv(s, iov.data(), n);
  const int error = errno;
  std::size_t left = got > 0 ? static_cast<std::size_t>(got) : 0;
  int used = 0;
  for (int i = 0; i < n && left > 0; ++i, ++used) {
    auto& v = vec[static_cast<std::size_t>(i)];
    v.iov_len = std::min(v.iov_len, left);
    left -= v.iov_len;
  }
  evbuffer_commit_space(in, vec.data(), used);
  if (got > 0) return ReadOutcome::Data;
  if (got == 0) return ReadOutcome::Eof;
  if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) return ReadOutcome::WouldBlock;
  errno = error;
  return ReadOutcome::Error;
}

void send_now(bufferevent* bev, evbuffer* data, bool plain) {
  evbuffer* out = bufferevent_get_output(bev);
  const evutil_socket_t s = bufferevent_getfd(bev);
  // Bytes already queued go first: then the new ones queue behind them.
  if (plain && s >= 0 && evbuffer_get_length(out) == 0) evbuffer_write(data, s);
  if (evbuffer_get_length(data) > 0) evbuffer_add_buffer(out, data);
}

void send_now(bufferevent* bev, const char* data, std::size_t size, bool plain) {
  evbuffer* out = bufferevent_get_output(bev);
  const evutil_socket_t s = bufferevent_getfd(bev);
  std::size_t sent = 0;
  if (plain && s >= 0 && evbuffer_get_length(out) == 0) {
    const ssize_t n = ::send(s, data, size, MSG_NOSIGNAL);
    if (n > 0) sent = static_cast<std::size_t>(n);
  }
  if (sent < size) evbuffer_add(out, data + sent, size - sent);
}

}  // namespace wsgate::proxy
