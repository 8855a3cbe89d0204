// An upstream connection as it passes from the connector to its user (a forwarded
// request, a forward-auth check), to the worker's idle pool and back: its bufferevent
// and, once a plain socket is connected, a read event of its own.
//
// libevent's bufferevent read asks ioctl(FIONREAD) before every readv. The connection's
// own event reads with one readv into the bufferevent's input (proxy/relay/socket_io.h,
// up to the bufferevent's max single read) and then calls the bufferevent's read
// callback, or its event callback with BEV_EVENT_EOF or BEV_EVENT_ERROR, as the
// bufferevent would. So owners keep setting their callbacks with bufferevent_setcb; they
// turn reading on and off with set_reading(), never bufferevent_enable(EV_READ). Read
// watermarks do not apply. The event stays with the connection across owners: handing
// it over costs no epoll_ctl. TLS connections read through their bufferevent as before.
//
// Ownership: owns the bufferevent (and so its socket or TLS session).
#pragma once

#include <memory>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/read_watch.h"

namespace wsgate::proxy {

class UpstreamConnection {
 public:
  UpstreamConnection() = default;
  explicit UpstreamConnection(bufferevent* bev) : bev_(bev) {}
  explicit UpstreamConnection(BufferEventPtr bev) : bev_(std::move(bev)) {}
  UpstreamConnection(UpstreamConnection&&) noexcept = default;
  UpstreamConnection& operator=(UpstreamConnection&& other) noexcept;
  ~UpstreamConnection();

  explicit operator bool() const { return bev_ != nullptr; }
  bufferevent* get() const { return bev_.get(); }

  // From now on the connection reads its socket itself (a connected plain TCP socket:
  // not for TLS, whose bytes the bufferevent decrypts). Reading stays on if it was.
  void read_plain_socket();
  void set_reading(bool on);
  bool reading() const;
  // The next read reserves little again (a connection going idle: its next response
  // head is small). See Reader::read_size.
  void start_small_reads();
  // The bufferevent alone, reading through its own event again (on if it was on here):
  // for a user that takes the socket out of the bufferevent (the relay) or reads it
  // through libevent (a refusal's body).
  BufferEventPtr release();
  void reset(bufferevent* bev = nullptr);

 private:
  struct Reader {
    bufferevent* bev = nullptr;
    ReadWatch watch;
    // What the next read reserves: kFirstRead, doubled after each read that filled it,
    // up to the bufferevent's max single read. Reserving the max (a route's buffer_size,
    // 512 KiB by default) for every small response cost a 512 KiB malloc and free, and
    // the allocator's consolidation, per request.
    std::size_t read_size = kFirstRead;
  };
  static constexpr std::size_t kFirstRead = 16 * 1024;
  static void on_readable(evutil_socket_t fd, short what, void* arg);

  BufferEventPtr bev_;
  std::unique_ptr<Reader> reader_;  // after bev_: its event goes before the socket closes
};

}  // namespace wsgate::proxy
