#include "proxy/relay/socket_endpoint.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "proxy/relay/socket_io.h"

namespace wsgate::proxy {
namespace {

// One read per readiness event, of up to kReadSize (libevent's size for a bufferevent);
// bulk transfers go through read_more() (tunnels) or read again at the next event.
// A read reserves kFirstRead and twice as much after each read that took all it asked
// for; one that took less than a quarter goes back to kFirstRead. Each read of a small
// message lands in a new evbuffer chain (the last one moved on whole to the other
// side), and a 16 KiB reservation made that a 32 KiB allocation, a large size class
// for jemalloc: a third of the relay's instructions per 64-byte message went to making
// and freeing it. kFirstRead's chain, with libevent's header, is a 4 KiB allocation.
constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kFirstRead = 4096 - 128;

}  // namespace

std::unique_ptr<SocketEndpoint> SocketEndpoint::take(BufferEventPtr bev) {
  bufferevent* b = bev.get();
  auto e = std::make_unique<SocketEndpoint>(bufferevent_get_base(b), bufferevent_getfd(b));
  bufferevent_setcb(b, nullptr, nullptr, nullptr, nullptr);
  bufferevent_disable(b, EV_READ | EV_WRITE);
  // The bufferevent forgets the socket (its events are deleted and point nowhere), so
  // freeing it does not close the socket, which is ours now.
  bufferevent_setfd(b, -1);
  // Its input's end and its output's front are frozen outside its own callbacks; the
  // chains move out whole, without a copy.
  evbuffer* in = bufferevent_get_input(b);
  evbuffer* out = bufferevent_get_output(b);
  evbuffer_unfreeze(in, 0);
  evbuffer_unfreeze(out, 1);
  if (evbuffer_get_length(in) > 0) evbuffer_add_buffer(e->input(), in);
  if (evbuffer_get_length(out) > 0) evbuffer_add_buffer(e->output(), out);
  return e;
}

SocketEndpoint::SocketEndpoint(event_base* base, evutil_socket_t fd)
    : base_(base), fd_(fd), reader_(base, fd, &SocketEndpoint::on_readable, this) {}

SocketEndpoint::~SocketEndpoint() {
  // The events leave the event loop while the socket is still open.
  reader_.reset();
  write_event_.reset();
  evutil_closesocket(fd_);
}

void SocketEndpoint::attach(EndpointEvents& events, std::size_t low_watermark) {
  events_ = &events;
  low_watermark_ = low_watermark;
  // What the previous owner queued (a 101, a 200) goes now: the write event is made
  // only if the socket does not take it all.
  flush();
}

void SocketEndpoint::detach() {
  events_ = nullptr;
  set_reading(false);
  if (writing_) event_del(write_event_.get());
  writing_ = false;
}

void SocketEndpoint::set_reading(bool on) {
  reader_.set(on && events_ != nullptr);
}

void SocketEndpoint::on_readable(evutil_socket_t fd, short /*what*/, void* self) {
  auto* e = static_cast<SocketEndpoint*>(self);
  evbuffer* in = e->input();
  const std::size_t want = e->read_size_ != 0 ? e->read_size_ : kFirstRead;
  const std::size_t before = evbuffer_get_length(in);
  const ReadOutcome r = read_socket(fd, in, want);
  const std::size_t got = evbuffer_get_length(in) - before;
  if (got >= want) {
    e->read_size_ = static_cast<uint32_t>(std::min(want * 2, kReadSize));
  } else if (got < want / 4) {
    e->read_size_ = 0;  // kFirstRead
  }
  if (r == ReadOutcome::WouldBlock || e->events_ == nullptr) return;
  if (r == ReadOutcome::Data) {
    e->events_->on_readable(*e);
    return;
  }
  // EOF or an error: nothing more will come; the relay hears it once.
  e->reader_.close();
  if (r == ReadOutcome::Eof) {
    e->events_->on_eof(*e);
  } else {
    e->report_error();
  }
}

void SocketEndpoint::flush() {
  // Write at once instead of waiting for the socket to be reported writable: one
  // syscall instead of two epoll_ctl calls and a loop turn per message (what nginx and
  // HAProxy do too). With the write event on, bytes are already waiting for it.
  if (writing_ || !out_ || evbuffer_get_length(out_.get()) == 0) return;
  write_socket(fd_, output());
  // Whatever did not fit (or an error to report) is left to the write event.
  if (evbuffer_get_length(output()) > 0) write_later();
}

void SocketEndpoint::write_later() {
  if (writing_ || failed_) return;
  if (!write_event_)
    write_event_.reset(
        event_new(base_, fd_, EV_WRITE | EV_PERSIST, &SocketEndpoint::on_writable, this));
  writing_ = true;
  event_add(write_event_.get(), nullptr);
}

void SocketEndpoint::on_writable(evutil_socket_t fd, short /*what*/, void* self) {
  auto* e = static_cast<SocketEndpoint*>(self);
  if (write_socket(fd, e->output()) < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
      errno != EINTR) {
    e->report_error();
    return;
  }
  const std::size_t left = evbuffer_get_length(e->output());
  if (left == 0) {
    event_del(e->write_event_.get());
    e->writing_ = false;
  }
  // As a bufferevent's write callback: after each write that leaves the output at or
  // below the low watermark.
  if (e->events_ != nullptr && left <= e->low_watermark_) e->events_->on_drained(*e);
}

void SocketEndpoint::report_error() {
  if (writing_) event_del(write_event_.get());
  writing_ = false;
  if (failed_) return;
  failed_ = true;
  if (events_ != nullptr) events_->on_error(*this);
}

bool SocketEndpoint::read_more(std::size_t max) {
  // A bulk tunnel reads what the socket holds, not one kReadSize (socket_io.h).
  if (reader_.closed() || max == 0) return true;
  // EOF and EAGAIN are left to the read event, which reports them.
  if (read_socket(fd_, input(), max) != ReadOutcome::Error) return true;
  reader_.close();
  return false;
}

void SocketEndpoint::shutdown_write() {
  shutdown(fd_, SHUT_WR);
}

void SocketEndpoint::reset() {
  // SO_LINGER 0: closing the socket sends RST instead of FIN.
  const linger reset{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

void SocketEndpoint::abandon() {
  set_reading(false);
  if (writing_) event_del(write_event_.get());
  writing_ = false;
  shutdown(fd_, SHUT_RDWR);
}

void SocketEndpoint::release_idle_buffers() {
  // Two evbuffers are about 280 bytes with the allocator's headers, an idle WebSocket's
  // largest relay item; making one again costs one allocation.
  if (in_ && evbuffer_get_length(in_.get()) == 0) in_.reset();
  if (out_ && !writing_ && evbuffer_get_length(out_.get()) == 0) out_.reset();
}

std::size_t SocketEndpoint::unsent_bytes() const {
  std::size_t held = out_ ? evbuffer_get_length(out_.get()) : 0;
  int unsent = 0;
  if (ioctl(fd_, SIOCOUTQ, &unsent) == 0 && unsent > 0) held += static_cast<std::size_t>(unsent);
  return held;
}

}  // namespace wsgate::proxy
