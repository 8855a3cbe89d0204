// An Endpoint over a libevent bufferevent: a plain TCP socket or a TLS (OpenSSL)
// bufferevent, or any other bufferevent (a pair) treated like TLS.
//
// On a plain socket it keeps the relay's fast paths: the socket is read by the endpoint
// itself, one readv per readiness event into the input's free space (libevent's own read
// asks FIONREAD first: one system call more per message, a third of a small message's
// relay cost), from a persistent read event that is added and removed only when the
// relay turns reading on or off; flush() writes to the fd at once (one writev, EV_WRITE
// enabled only while bytes are left over), read_more() reads up to what it is asked in
// one readv, unsent_bytes() adds the kernel's send queue, and the write side can be
// half-closed. Write errors still come from the bufferevent.
//
// Ownership: owns the bufferevent (and so its socket or TLS session) and frees it when
// destroyed.
#pragma once

#include <memory>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/endpoint.h"

namespace wsgate::proxy {

// Sends a TLS close_notify on `bev` if it is a TLS bufferevent whose handshake finished
// (no-op for plain sockets). Call once its output has been flushed.
void send_close_notify(bufferevent* bev);

class BufferEventEndpoint final : public Endpoint {
 public:
  // `plain_socket`: `bev` is a socket bufferevent (not TLS), so its fd may be read and
  // written directly and half-closed.
  BufferEventEndpoint(BufferEventPtr bev, bool plain_socket);
  ~BufferEventEndpoint() override;
  BufferEventEndpoint(const BufferEventEndpoint&) = delete;
  BufferEventEndpoint& operator=(const BufferEventEndpoint&) = delete;

  void attach(EndpointEvents& events, std::size_t low_watermark) override;
  void detach() override;
  evbuffer* input() override { return bufferevent_get_input(bev_.get()); }
  evbuffer* output() override { return bufferevent_get_output(bev_.get()); }
  void set_reading(bool on) override;
  void flush() override;
  bool read_more(std::size_t max) override;
  bool can_half_close() const override;
  void shutdown_write() override;
  void reset() override;
  void abandon() override;
  void finish() override { send_close_notify(bev_.get()); }
  std::size_t unsent_bytes() const override;

  bufferevent* bufferevent_ptr() const { return bev_.get(); }

 private:
  static void on_read(bufferevent* bev, void* self);
  static void on_write(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  static void on_socket_readable(evutil_socket_t fd, short what, void* self);
  evutil_socket_t fd() const { return bufferevent_getfd(bev_.get()); }
  bool reads_itself() const { return read_event_ != nullptr; }

  BufferEventPtr bev_;
  bool plain_socket_;
  EndpointEvents* events_ = nullptr;
  // Plain sockets: the endpoint's own read event (declared after bev_: freed before the
  // socket is closed), and whether it is added.
  EventPtr read_event_;
  bool reading_ = false;
  bool read_closed_ = false;  // EOF or an error was read: nothing more to read
};

// The convenience path for call sites that hold a bufferevent.
inline std::unique_ptr<Endpoint> make_endpoint(BufferEventPtr bev, bool plain_socket) {
  return std::make_unique<BufferEventEndpoint>(std::move(bev), plain_socket);
}

}  // namespace wsgate::proxy
