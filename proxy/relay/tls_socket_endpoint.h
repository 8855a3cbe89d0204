// An Endpoint over a TLS session on a plain TCP socket, with OpenSSL driven directly: its
// own two evbuffers, a read event and, only while a write does not complete, a write
// event. No bufferevent: a relayed wss:// socket used a bufferevent_openssl only to call
// SSL_read and SSL_write, yet it held the bufferevent, its two events and its locks for
// the whole life of an idle WebSocket, and read 4 KiB per SSL_read loop (issue 13).
//
// Reads: SSL_read straight into the input's reserved space (no copy), with read-ahead so
// one recv fetches every record the kernel holds; records OpenSSL already buffered are
// read without waiting for the socket (SSL_has_pending). Writes: flush() calls SSL_write
// at once on the output's front chain; what the socket does not take waits for the write
// event, which reports on_drained at or below the low watermark. A read that must write
// first (WANT_WRITE) or a write that must read first (WANT_READ: a TLS 1.3 KeyUpdate or
// a TLS 1.2 renegotiation crossing our own traffic) waits for the readiness it needs.
//
// close_notify from the peer is on_eof (RFC 8446 6.1); so is a TCP FIN without one (the
// "dirty shutdown" the bufferevent allowed: WebSocket frames carry their own ends); a
// reset or a TLS protocol error is on_error. No half-close (can_half_close() is false,
// as before: a TLS 1.2 peer answers close_notify by closing). finish() sends close_notify.
//
// Ownership: owns the socket and the SSL object; destroying the endpoint frees the SSL
// and closes the socket.
#pragma once

#include <openssl/ssl.h>

#include <memory>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/endpoint.h"

namespace wsgate::proxy {

class TlsSocketEndpoint final : public Endpoint {
 public:
  // Takes `bev`'s socket, SSL object and whatever its buffers hold (decrypted bytes read
  // past a request head, a 101 not written yet), then frees the bufferevent without
  // freeing the SSL or closing the socket. `bev` must be a bufferevent_openssl on a
  // socket (no underlying bufferevent), its handshake done, made with
  // BEV_OPT_CLOSE_ON_FREE, as every one the gateway makes is.
  static std::unique_ptr<TlsSocketEndpoint> take(BufferEventPtr bev);

  // Drives `ssl` (owned from now on, handshake done) over socket `fd` (owned).
  TlsSocketEndpoint(event_base* base, evutil_socket_t fd, SSL* ssl);
  ~TlsSocketEndpoint() override;
  TlsSocketEndpoint(const TlsSocketEndpoint&) = delete;
  TlsSocketEndpoint& operator=(const TlsSocketEndpoint&) = delete;

  void attach(EndpointEvents& events, std::size_t low_watermark) override;
  void detach() override;
  evbuffer* input() override { return in_.get(); }
  evbuffer* output() override { return out_.get(); }
  void set_reading(bool on) override;
  void flush() override;
  bool can_half_close() const override { return false; }
  void shutdown_write() override {}
  void reset() override;
  void abandon() override;
  void finish() override;
  std::size_t unsent_bytes() const override;

 private:
  enum class Io { Progress, Blocked, Eof, Error };

  static void on_readable(evutil_socket_t fd, short what, void* self);
  static void on_writable(evutil_socket_t fd, short what, void* self);
  // SSL_read into input() until OpenSSL holds nothing more, up to a budget; `got`: some
  // bytes were read.
  Io read_records(bool& got);
  // SSL_write output()'s front until it is empty or the transport blocks.
  Io write_records(bool& wrote);
  // What an SSL_get_error() code means here; notes what a WANT_* waits for.
  Io classify(int ssl_error, bool reading);
  // From the loop: read (write) and report; false when the relay heard of an end.
  bool read_now();
  bool write_now();
  // Adds or deletes the two events to match what is waited for.
  void update_events();
  void ensure_write_event();
  void schedule_read();  // run on_readable from the loop (records OpenSSL holds)
  void fail();           // a fatal error inside a relay's call: reported from the loop
  void report_error();

  event_base* base_;
  evutil_socket_t fd_;
  SSL* ssl_;
  EvbufferPtr in_;
  EvbufferPtr out_;
  EventPtr read_event_;
  EventPtr write_event_;  // made the first time it is needed
  EndpointEvents* events_ = nullptr;
  std::size_t low_watermark_ = 0;
  // OpenSSL: a write retried after WANT_* must offer at least as many bytes as before
  // (SSL_write(3), "the same arguments"; the buffer may move, SSL_MODE_ACCEPT_MOVING_
  // WRITE_BUFFER).
  std::size_t retry_size_ = 0;
  bool reading_ = false;           // the relay wants bytes
  bool read_on_ = false;           // read_event_ is added
  bool write_on_ = false;          // write_event_ is added
  bool write_waits_ = false;       // SSL_write said WANT_WRITE: the socket is full
  bool read_needs_write_ = false;  // SSL_read said WANT_WRITE
  bool write_needs_read_ = false;  // SSL_write said WANT_READ
  bool read_closed_ = false;       // EOF or an error was read
  bool stopped_ = false;           // no more I/O: a fatal error, or abandon()
  bool failed_ = false;            // a fatal error happened
  bool error_reported_ = false;    // on_error was reported (at most once)
};

}  // namespace wsgate::proxy
