#include "proxy/relay/socket_read.h"

#include <event2/buffer.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace wsgate::proxy {

bool read_available(bufferevent* bev, std::size_t max) {
  const evutil_socket_t s = bufferevent_getfd(bev);
  if (s < 0 || max == 0) return true;
  evbuffer* in = bufferevent_get_input(bev);
  std::array<evbuffer_iovec, 2> vec{};
  // The bufferevent keeps its input's end frozen outside its own read callback; we do
  // what that callback does.
  evbuffer_unfreeze(in, 0);
  const int n = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(max), vec.data(), 2);
  std::array<iovec, 2> iov{};
  for (int i = 0; i < n; ++i)
    iov[static_cast<std::size_t>(i)] = {vec[static_cast<std::size_t>(i)].iov_base,
                                        vec[static_cast<std::size_t>(i)].iov_len};
  const ssize_t got = n > 0 ? readv(s, iov.data(), n) : -1;
  const bool failed = n > 0 && got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  std::size_t left = got > 0 ? static_cast<std::size_t>(got) : 0;
  int used = 0;
  for (int i = 0; i < n && left > 0; ++i, ++used) {
    auto& v = vec[static_cast<std::size_t>(i)];
    v.iov_len = std::min(v.iov_len, left);
    left -= v.iov_len;
  }
  evbuffer_commit_space(in, vec.data(), used);
  evbuffer_freeze(in, 0);
  return !failed;
}

}  // namespace wsgate::proxy
