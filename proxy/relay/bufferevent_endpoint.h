// An Endpoint over a libevent bufferevent that neither a SocketEndpoint nor a
// TlsSocketEndpoint takes over: a TLS (OpenSSL) bufferevent layered on another
// bufferevent (a wss:// upstream behind a PROXY header), or a pair. The bufferevent
// reads and writes; the endpoint only passes its callbacks on. A plain socket gets a
// SocketEndpoint (proxy/relay/socket_endpoint.h), TLS on a socket a TlsSocketEndpoint
// (proxy/relay/tls_socket_endpoint.h): make_endpoint() chooses.
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
  explicit BufferEventEndpoint(BufferEventPtr bev);
  ~BufferEventEndpoint() override;
  BufferEventEndpoint(const BufferEventEndpoint&) = delete;
  BufferEventEndpoint& operator=(const BufferEventEndpoint&) = delete;

  void attach(EndpointEvents& events, std::size_t low_watermark) override;
  void detach() override;
  evbuffer* input() override { return bufferevent_get_input(bev_.get()); }
  evbuffer* output() override { return bufferevent_get_output(bev_.get()); }
  void set_reading(bool on) override;
  void flush() override {}  // the bufferevent writes (and encrypts) on its own
  bool can_half_close() const override { return false; }
  void shutdown_write() override {}
  void reset() override;
  void abandon() override;
  void finish() override { send_close_notify(bev_.get()); }
  std::size_t unsent_bytes() const override;

 private:
  static void on_read(bufferevent* bev, void* self);
  static void on_write(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  evutil_socket_t fd() const { return bufferevent_getfd(bev_.get()); }

  BufferEventPtr bev_;
  EndpointEvents* events_ = nullptr;
};

// The Endpoint for a bufferevent the relay takes over; `plain_socket`: `bev` is a socket
// bufferevent (not TLS), which becomes a SocketEndpoint (its socket and buffered bytes
// taken, the bufferevent freed). A bufferevent_openssl on a socket, handshake done,
// becomes a TlsSocketEndpoint the same way (its SSL taken too).
std::unique_ptr<Endpoint> make_endpoint(BufferEventPtr bev, bool plain_socket);

}  // namespace wsgate::proxy
