// An Endpoint over a plain TCP (or Unix) socket: its own two evbuffers (made when first
// used, freed again while the connection is idle), a read event and, only while bytes
// wait for the socket to take them, a write event. No
// bufferevent: a relayed plain socket used none of its machinery (the endpoint reads and
// writes the fd itself, proxy/relay/socket_io.h), yet each one held 632 bytes for it plus
// an event of its own, for the whole life of an idle WebSocket (issue 13).
//
// Reads: one recv per readiness event into the input's free space, from a persistent
// read event added or removed only when the relay turns reading on or off; read_more()
// reads up to what it is asked. Writes: flush() writes to the fd at once (one send);
// what the socket does not take waits for the write event, which reports on_drained at
// or below the low watermark and a write error as on_error.
//
// Ownership: owns the socket and closes it when destroyed.
#pragma once

#include <cstdint>
#include <memory>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/endpoint.h"
#include "proxy/relay/read_watch.h"

namespace wsgate::proxy {

class SocketEndpoint final : public Endpoint {
 public:
  // Takes `bev`'s socket and whatever its buffers hold (bytes read past a request head,
  // an answer not written yet), then frees the bufferevent without closing the socket.
  // `bev` must be a socket bufferevent (bufferevent_getfd >= 0, not TLS) that owns its
  // socket (BEV_OPT_CLOSE_ON_FREE), as every one the gateway makes does.
  static std::unique_ptr<SocketEndpoint> take(BufferEventPtr bev);

  SocketEndpoint(event_base* base, evutil_socket_t fd);
  ~SocketEndpoint() override;
  SocketEndpoint(const SocketEndpoint&) = delete;
  SocketEndpoint& operator=(const SocketEndpoint&) = delete;

  void attach(EndpointEvents& events, std::size_t low_watermark) override;
  void detach() override;
  evbuffer* input() override { return buffer(in_); }
  evbuffer* output() override { return buffer(out_); }
  std::size_t output_length() override { return out_ ? evbuffer_get_length(out_.get()) : 0; }
  void set_reading(bool on) override;
  void flush() override;
  bool read_more(std::size_t max) override;
  evutil_socket_t splice_fd() const override { return failed_ ? -1 : fd_; }
  bool can_half_close() const override { return true; }
  void shutdown_write() override;
  void reset() override;
  void abandon() override;
  void finish() override {}
  std::size_t unsent_bytes() const override;
  void release_idle_buffers() override;

 private:
  static evbuffer* buffer(EvbufferPtr& b) {
    if (!b) b.reset(evbuffer_new());
    return b.get();
  }
  static void on_readable(evutil_socket_t fd, short what, void* self);
  static void on_writable(evutil_socket_t fd, short what, void* self);
  // Waits for the socket to take what output() still holds (the write event).
  void write_later();
  void report_error();

  event_base* base_;
  evutil_socket_t fd_;
  EvbufferPtr in_;   // null while idle: input() makes it
  EvbufferPtr out_;  // null while idle: output() makes it
  ReadWatch reader_;
  EventPtr write_event_;  // made the first time a write does not complete
  EndpointEvents* events_ = nullptr;
  std::size_t low_watermark_ = 0;
  uint32_t read_size_ = 0;  // what the next read reserves (socket_endpoint.cc); 0: the least
  bool writing_ = false;    // write_event_ is added
  bool failed_ = false;     // on_error was reported (at most once)
};

}  // namespace wsgate::proxy
