#include "proxy/relay/bufferevent_endpoint.h"

#include <event2/bufferevent_ssl.h>
#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "proxy/relay/socket_io.h"

namespace wsgate::proxy {

void send_close_notify(bufferevent* bev) {
  SSL* ssl = bufferevent_openssl_get_ssl(bev);  // null for plain sockets
  if (ssl == nullptr || !SSL_is_init_finished(ssl)) return;
  SSL_shutdown(ssl);  // writes the alert straight to the socket; one attempt is enough
  ERR_clear_error();
}

BufferEventEndpoint::BufferEventEndpoint(BufferEventPtr bev, bool plain_socket)
    : bev_(std::move(bev)), plain_socket_(plain_socket) {}

BufferEventEndpoint::~BufferEventEndpoint() = default;

namespace {

// One read per readiness event: libevent's size for a bufferevent, enough for a burst of
// small messages; bulk transfers go through read_more() (tunnels) or read again at the
// next event.
constexpr std::size_t kReadSize = 16 * 1024;

}  // namespace

void BufferEventEndpoint::attach(EndpointEvents& events, std::size_t low_watermark) {
  events_ = &events;
  bufferevent* b = bev_.get();
  if (plain_socket_ && fd() >= 0 && !read_event_) {
    read_event_.reset(event_new(bufferevent_get_base(b), fd(), EV_READ | EV_PERSIST,
                                &BufferEventEndpoint::on_socket_readable, this));
    // The input is appended to by read_socket() from now on, not by the bufferevent.
    evbuffer_unfreeze(input(), 0);
  }
  // The write callback fires once the output is at or below the low watermark.
  bufferevent_setwatermark(b, EV_WRITE, low_watermark, 0);
  bufferevent_setcb(b, &on_read, &on_write, &on_event, this);
  bufferevent_disable(b, EV_READ);
  // A plain socket is written directly (flush()): EV_WRITE only while bytes wait. TLS
  // and other bufferevents write on their own and keep it on.
  if (!plain_socket_ || evbuffer_get_length(output()) > 0) {
    bufferevent_enable(b, EV_WRITE);
  } else {
    bufferevent_disable(b, EV_WRITE);
  }
}

void BufferEventEndpoint::detach() {
  events_ = nullptr;
  set_reading(false);
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
}

void BufferEventEndpoint::on_read(bufferevent* /*bev*/, void* self) {
  auto* e = static_cast<BufferEventEndpoint*>(self);
  if (e->events_ != nullptr) e->events_->on_readable(*e);
}

void BufferEventEndpoint::on_write(bufferevent* bev, void* self) {
  auto* e = static_cast<BufferEventEndpoint*>(self);
  // Everything was flushed: stop watching writability until bytes wait again.
  if (e->plain_socket_ && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    bufferevent_disable(bev, EV_WRITE);
  if (e->events_ != nullptr) e->events_->on_drained(*e);
}

void BufferEventEndpoint::on_event(bufferevent* /*bev*/, short what, void* self) {
  auto* e = static_cast<BufferEventEndpoint*>(self);
  if (e->events_ == nullptr) return;
  if ((what & BEV_EVENT_ERROR) != 0) {
    e->events_->on_error(*e);
  } else if ((what & BEV_EVENT_EOF) != 0) {
    e->events_->on_eof(*e);
  }
}

void BufferEventEndpoint::on_socket_readable(evutil_socket_t fd, short /*what*/, void* self) {
  auto* e = static_cast<BufferEventEndpoint*>(self);
  const ReadOutcome r = read_socket(fd, e->input(), kReadSize);
  if (r == ReadOutcome::WouldBlock || e->events_ == nullptr) return;
  if (r == ReadOutcome::Data) {
    e->events_->on_readable(*e);
    return;
  }
  // EOF or an error: nothing more will come; the relay hears it once.
  e->read_closed_ = true;
  e->set_reading(false);
  if (r == ReadOutcome::Eof) {
    e->events_->on_eof(*e);
  } else {
    e->events_->on_error(*e);
  }
}

void BufferEventEndpoint::set_reading(bool on) {
  if (reads_itself()) {
    on = on && !read_closed_ && events_ != nullptr;
    if (on == reading_) return;  // no epoll_ctl for a state that does not change
    reading_ = on;
    if (on) {
      event_add(read_event_.get(), nullptr);
    } else {
      event_del(read_event_.get());
    }
    return;
  }
  if (on) {
    bufferevent_enable(bev_.get(), EV_READ);
  } else {
    bufferevent_disable(bev_.get(), EV_READ);
  }
}

void BufferEventEndpoint::flush() {
  if (!plain_socket_) return;  // TLS: the bufferevent encrypts and writes on its own
  // Write at once instead of waiting for the socket to be reported writable: one
  // syscall instead of two epoll_ctl calls and a loop turn per message (what nginx
  // and HAProxy do too). The bufferevent keeps its output's front frozen except in its
  // own write callback; we do what that callback does.
  evbuffer* out = output();
  const evutil_socket_t s = fd();
  if (s < 0) {  // not a socket after all (a pair): let the bufferevent move the bytes
    bufferevent_enable(bev_.get(), EV_WRITE);
    return;
  }
  evbuffer_unfreeze(out, 1);
  evbuffer_write(out, s);
  evbuffer_freeze(out, 1);
  // Whatever did not fit (or an error to report) is left to the bufferevent.
  if (evbuffer_get_length(out) > 0) bufferevent_enable(bev_.get(), EV_WRITE);
}

bool BufferEventEndpoint::read_more(std::size_t max) {
  // A bulk tunnel reads what the socket holds, not libevent's 4 KiB (socket_io.h).
  if (!plain_socket_ || max == 0) return true;
  if (!reads_itself()) return read_available(bev_.get(), max);
  if (read_closed_) return true;
  // EOF and EAGAIN are left to the read event, which reports them.
  if (read_socket(fd(), input(), max) != ReadOutcome::Error) return true;
  read_closed_ = true;
  set_reading(false);
  return false;
}

bool BufferEventEndpoint::can_half_close() const {
  return plain_socket_ && fd() >= 0;
}

void BufferEventEndpoint::shutdown_write() {
  if (fd() >= 0) shutdown(fd(), SHUT_WR);
}

void BufferEventEndpoint::reset() {
  // SO_LINGER 0: closing the socket sends RST instead of FIN.
  if (fd() < 0) return;
  const linger reset{1, 0};
  setsockopt(fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

void BufferEventEndpoint::abandon() {
  set_reading(false);
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  if (fd() >= 0) shutdown(fd(), SHUT_RDWR);
}

std::size_t BufferEventEndpoint::unsent_bytes() const {
  std::size_t held = evbuffer_get_length(bufferevent_get_output(bev_.get()));
  int unsent = 0;
  if (plain_socket_ && fd() >= 0 && ioctl(fd(), SIOCOUTQ, &unsent) == 0 && unsent > 0)
    held += static_cast<std::size_t>(unsent);
  return held;
}

}  // namespace wsgate::proxy
