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
  ssize_t got = 0;
  if (n == 1) {
    got = recv(s, vec[0].iov_base, vec[0].iov_len, 0);
  } else {
    std::array<iovec, 2> iov{};
    for (std::size_t i = 0; i < 2; ++i) iov[i] = {vec[i].iov_base, vec[i].iov_len};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = 2;
    got = recvmsg(s, &msg, 0);
  }
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

ssize_t write_socket(evutil_socket_t s, evbuffer* out) {
  std::array<evbuffer_iovec, kWriteChains> vec{};
  const int n = evbuffer_peek(out, -1, nullptr, vec.data(), kWriteChains);
  if (n <= 0) return 0;
  ssize_t sent = 0;
  if (n == 1) {
    sent = send(s, vec[0].iov_base, vec[0].iov_len, MSG_NOSIGNAL);
  } else {
    std::array<iovec, kWriteChains> iov{};
    const auto chains = static_cast<std::size_t>(std::min(n, kWriteChains));
    for (std::size_t i = 0; i < chains; ++i) iov[i] = {vec[i].iov_base, vec[i].iov_len};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = chains;
    sent = sendmsg(s, &msg, MSG_NOSIGNAL);
  }
  if (sent > 0) evbuffer_drain(out, static_cast<std::size_t>(sent));
  return sent;
}

void send_now(bufferevent* bev, evbuffer* data, bool plain) {
  evbuffer* out = bufferevent_get_output(bev);
  const evutil_socket_t s = socket_of(bev);
  // Bytes already queued go first: then the new ones queue behind them.
  if (plain && s >= 0 && evbuffer_get_length(out) == 0) write_socket(s, data);
  if (evbuffer_get_length(data) > 0) evbuffer_add_buffer(out, data);
}

void send_now(bufferevent* bev, const char* data, std::size_t size, bool plain) {
  evbuffer* out = bufferevent_get_output(bev);
  const evutil_socket_t s = socket_of(bev);
  std::size_t sent = 0;
  if (plain && s >= 0 && evbuffer_get_length(out) == 0) {
    const ssize_t n = ::send(s, data, size, MSG_NOSIGNAL);
    if (n > 0) sent = static_cast<std::size_t>(n);
  }
  if (sent < size) evbuffer_add(out, data + sent, size - sent);
}

}  // namespace wsgate::proxy
