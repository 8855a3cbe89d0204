// An Endpoint over a libevent bufferevent: a plain TCP socket or a TLS (OpenSSL)
// bufferevent, or any other bufferevent (a pair) treated like TLS.
//
// On a plain socket it keeps the relay's fast paths: flush() writes to the fd at once
// (one writev, EV_WRITE enabled only while bytes are left over), read_more() reads up
// to what it is asked in one readv (libevent alone reads 4 KiB per event), unsent_bytes()
// adds the kernel's send queue, and the write side can be half-closed.
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
  evutil_socket_t fd() const { return bufferevent_getfd(bev_.get()); }

  BufferEventPtr bev_;
  bool plain_socket_;
  EndpointEvents* events_ = nullptr;
};

// The convenience path for call sites that hold a bufferevent.
inline std::unique_ptr<Endpoint> make_endpoint(BufferEventPtr bev, bool plain_socket) {
  return std::make_unique<BufferEventEndpoint>(std::move(bev), plain_socket);
}

}  // namespace wsgate::proxy
