// A socket's persistent read event for code that reads plain sockets itself instead of
// through a bufferevent (proxy/relay/socket_io.h): the HTTP/1.1 client connection, an
// upstream connection, a relayed socket. It is added to or deleted from the loop only
// when its state changes (no libevent call, no epoll_ctl, for nothing), and stays off
// for good once the socket reported EOF or an error.
#pragma once

#include <event2/event.h>

#include "proxy/libevent_ptr.h"

namespace wsgate::proxy {

class ReadWatch {
 public:
  ReadWatch() = default;
  ReadWatch(event_base* base, evutil_socket_t fd, event_callback_fn on_readable, void* arg)
      : event_(event_new(base, fd, EV_READ | EV_PERSIST, on_readable, arg)) {}

  explicit operator bool() const { return event_ != nullptr; }
  bool on() const { return on_; }
  bool closed() const { return closed_; }

  void set(bool on) {
    on = on && !closed_ && event_ != nullptr;
    if (on == on_) return;
    on_ = on;
    if (on) {
      event_add(event_.get(), nullptr);
    } else {
      event_del(event_.get());
    }
  }
  // EOF or an error was read: reading stops and does not resume.
  void close() {
    set(false);
    closed_ = true;
  }
  // The event goes (the socket moves to another reader).
  void reset() {
    event_.reset();
    on_ = false;
  }

 private:
  EventPtr event_;
  bool on_ = false;
  bool closed_ = false;
};

}  // namespace wsgate::proxy
