#include "proxy/relay/bufferevent_endpoint.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "proxy/relay/socket_endpoint.h"
#include "proxy/relay/tls_socket_endpoint.h"
#include "tls/openssl_errors.h"

namespace wsgate::proxy {

void send_close_notify(bufferevent* bev) {
  SSL* ssl = bufferevent_openssl_get_ssl(bev);  // null for plain sockets
  if (ssl == nullptr || !SSL_is_init_finished(ssl)) return;
  SSL_shutdown(ssl);  // writes the alert straight to the socket; one attempt is enough
  tls::clear_openssl_errors();
}

std::unique_ptr<Endpoint> make_endpoint(BufferEventPtr bev, bool plain_socket) {
  // A pair has no socket: its bytes stay with the bufferevent.
  if (bufferevent_getfd(bev.get()) < 0)
    return std::make_unique<BufferEventEndpoint>(std::move(bev));
  if (plain_socket) return SocketEndpoint::take(std::move(bev));
  // TLS straight on a socket (not layered on another bufferevent, as a wss:// upstream
  // behind a PROXY header is) is driven without its bufferevent.
  SSL* ssl = bufferevent_openssl_get_ssl(bev.get());
  if (ssl != nullptr && bufferevent_get_underlying(bev.get()) == nullptr &&
      SSL_is_init_finished(ssl) == 1)
    return TlsSocketEndpoint::take(std::move(bev));
  return std::make_unique<BufferEventEndpoint>(std::move(bev));
}

BufferEventEndpoint::BufferEventEndpoint(BufferEventPtr bev) : bev_(std::move(bev)) {}

BufferEventEndpoint::~BufferEventEndpoint() = default;

void BufferEventEndpoint::attach(EndpointEvents& events, std::size_t low_watermark) {
  events_ = &events;
  bufferevent* b = bev_.get();
  // The write callback fires once the output is at or below the low watermark.
  bufferevent_setwatermark(b, EV_WRITE, low_watermark, 0);
  bufferevent_setcb(b, &on_read, &on_write, &on_event, this);
  bufferevent_disable(b, EV_READ);
  bufferevent_enable(b, EV_WRITE);
}

void BufferEventEndpoint::detach() {
  events_ = nullptr;
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
}

void BufferEventEndpoint::on_read(bufferevent* /*bev*/, void* self) {
  auto* e = static_cast<BufferEventEndpoint*>(self);
  if (e->events_ != nullptr) e->events_->on_readable(*e);
}

void BufferEventEndpoint::on_write(bufferevent* /*bev*/, void* self) {
  auto* e = static_cast<BufferEventEndpoint*>(self);
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

void BufferEventEndpoint::set_reading(bool on) {
  if (on) {
    bufferevent_enable(bev_.get(), EV_READ);
  } else {
    bufferevent_disable(bev_.get(), EV_READ);
  }
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
  return evbuffer_get_length(bufferevent_get_output(bev_.get()));
}

}  // namespace wsgate::proxy
