// One side of a relay (the client or the upstream), as the relay sees it: two evbuffers
// and a few controls. The relay (proxy/relay/relay.h) owns both Endpoints; its two Pipes
// move bytes from one Endpoint's input() to the other's output() without copying
// (evbuffer chain moves). Implementations: SocketEndpoint (a plain TCP socket,
// proxy/relay/socket_endpoint.h); TlsSocketEndpoint (TLS on a TCP socket,
// proxy/relay/tls_socket_endpoint.h); BufferEventEndpoint (a TLS bufferevent over another
// bufferevent, proxy/relay/bufferevent_endpoint.h); an HTTP/2 stream; the in-memory
// endpoint of the relay's unit tests (tests/proxy/relay/memory_endpoint.h).
//
// The contract, for an implementation:
//  - input(): bytes from the peer, in order. The endpoint appends; only the relay takes
//    bytes out, and only by evbuffer_remove_buffer() or evbuffer_drain() on it. Bytes a
//    Pipe has not taken yet stay there (an incomplete frame header, or everything while
//    the relay is not reading). To learn how many bytes the relay took (HTTP/2: return
//    flow-control credit, nghttp2_session_consume, only for those), watch input() with
//    evbuffer_add_cb(): the n_deleted of each call is what the relay moved or dropped.
//  - output(): bytes to the peer. Only the relay appends (chain moves and the gateway's
//    own frames); the endpoint drains it as its transport takes bytes (a socket write,
//    an nghttp2 data provider with NGHTTP2_DATA_FLAG_NO_COPY). After appending to an
//    empty output() the relay calls flush(): "start writing now".
//  - set_reading(false): stop taking bytes from the transport (an HTTP/2 stream: the
//    relay does not take bytes out of input(), so no credit goes back and the client's
//    window closes; the stream may still append what the window allowed). While reading
//    is off the endpoint should not call on_readable(). When the relay turns reading
//    back on it first moves whatever input() holds, so the endpoint need not signal it.
//  - Callbacks (EndpointEvents) run from the event loop, never from inside a call the
//    relay made on the endpoint, and only between attach() and detach():
//      on_readable: input() has new bytes;
//      on_drained:  after each write that leaves output() at or below the low
//                   watermark given to attach(), emptied included (the relay resumes
//                   reading there, and waits for an empty output before it ends);
//      on_eof:      the peer will send nothing more (TCP FIN, TLS close, END_STREAM),
//                   after every byte before it is in input(), where the relay takes
//                   them even while it is not reading; at most once;
//      on_error:    the transport failed or the peer reset it (ECONNRESET, RST_STREAM);
//                   possibly after on_eof; at most once.
//  - shutdown_write(): the relay's half-close toward the peer, once output() is empty:
//    TCP shutdown(SHUT_WR), HTTP/2 END_STREAM. Only when can_half_close().
//  - reset(): end abortively (TCP: SO_LINGER 0, so the close sends RST; HTTP/2:
//    RST_STREAM). Takes effect when the endpoint is destroyed, or at once.
//  - abandon(): the peer is taken for dead: stop reading and writing and end the
//    transport now, without flushing (TCP shutdown both ways; HTTP/2 RST_STREAM CANCEL).
//  - finish(): the relay is over and the peer is still there: end cleanly (a TLS
//    close_notify, RFC 8446 6.1; HTTP/2 END_STREAM if not sent yet). After detach().
//  - Destroying the endpoint closes its transport (the socket, the stream).
// Everything runs on the owning worker's thread.
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>

namespace wsgate::proxy {

class Endpoint;

// What an Endpoint tells its relay. See the contract above for when each fires.
class EndpointEvents {
 public:
  virtual void on_readable(Endpoint& from) = 0;
  virtual void on_drained(Endpoint& to) = 0;
  virtual void on_eof(Endpoint& from) = 0;
  virtual void on_error(Endpoint& from) = 0;

 protected:
  ~EndpointEvents() = default;
};

class Endpoint {
 public:
  virtual ~Endpoint() = default;

  // From now on the endpoint reports to `events`, with on_drained() at or below
  // `low_watermark` bytes in output(). Reading starts off; the relay turns it on.
  virtual void attach(EndpointEvents& events, std::size_t low_watermark) = 0;
  // No more callbacks, reads or writes (the relay is over). Idempotent.
  virtual void detach() = 0;

  virtual evbuffer* input() = 0;
  virtual evbuffer* output() = 0;
  // Bytes in output(), without making a buffer that release_idle_buffers() freed.
  virtual std::size_t output_length() { return evbuffer_get_length(output()); }

  virtual void set_reading(bool on) = 0;
  // Bytes were appended to output() (which was empty): start writing them.
  virtual void flush() = 0;
  // Optional: read up to `max` more bytes into input() now, beyond the transport's
  // usual read size (CONNECT tunnels over plain sockets: larger reads, fewer syscalls).
  // False when the read failed: the error is the relay's to report (the kernel reports
  // it once), as if on_error() had fired.
  virtual bool read_more(std::size_t /*max*/) { return true; }

  // Optional: the plain socket under the endpoint, which a SplicePump may read or write
  // with splice(2) while the relay neither reads nor writes the endpoint (large
  // WebSocket payloads, proxy/relay/pipe.h); -1: none (TLS, an HTTP/2 stream), or it
  // failed.
  virtual evutil_socket_t splice_fd() const { return -1; }

  // shutdown_write() is possible: a plain TCP socket, an HTTP/2 stream.
  virtual bool can_half_close() const = 0;
  virtual void shutdown_write() = 0;
  virtual void reset() = 0;
  virtual void abandon() = 0;
  virtual void finish() = 0;

  // Bytes queued toward the peer that have not left the gateway: output() plus, on a
  // plain socket, the kernel's send queue (SIOCOUTQ). For keepalive deadlines only.
  virtual std::size_t unsent_bytes() const = 0;

  // Optional: the connection is idle (just started, or quiet since the last idle check):
  // free whichever of input() and output() is empty, so an idle connection holds no
  // buffers; the next input() or output() makes them again (issue 13).
  virtual void release_idle_buffers() {}
};

}  // namespace wsgate::proxy
