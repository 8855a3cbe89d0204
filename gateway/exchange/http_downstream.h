// The client side of a forwarded HTTP request (issue 15), for the HTTP exchange
// (gateway/exchange/http_exchange.h): the request's content in, the upstream's response
// out, each with backpressure. A role of its own beside Downstream: a downstream that
// can carry forwarded requests offers it (Downstream::http()): the HTTP/1.1 connection
// (gateway/h1/h1_http_downstream.cc) and an HTTP/2 stream (gateway/h2/h2_stream.cc).
//
// Order of calls, by the exchange: read_request_body any number of times (after
// continue_request_body, once the upstream is reached); at most one response:
// begin_response, response_body*, end_response; then Downstream::exchange_finished.
// The downstream, for its part, calls Exchange::on_request_body_ready when more request
// bytes arrived and Exchange::on_client_drained when its output fell below half of
// the exchange's watermark.
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>

#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

class HttpDownstream {
 public:
  enum class BodyState {
    More,    // more content may come (nothing buffered now, or `max` reached)
    Done,    // the whole content was handed over
    Failed,  // malformed framing or over the limit: `error` is the answer (400/413)
  };
  struct BodyRead {
    std::size_t moved = 0;
    BodyState state = BodyState::More;
    http::Refusal error;
  };
  // Moves up to `max` bytes of the request's content (its transfer coding removed) to
  // the end of `to`, without copying them.
  virtual BodyRead read_request_body(evbuffer* to, std::size_t max) = 0;
  // The upstream is reached: a client that asked to wait (Expect: 100-continue, RFC 9110
  // 10.1.1) gets its 100 Continue now.
  virtual void continue_request_body() = 0;
  // The rest of the request's content straight from the client's socket, for the kernel
  // to move to the upstream (proxy/relay/splice_pump.h): offered only by a plain HTTP/1.1
  // connection, for a Content-Length body of which at least `min_left` bytes are still
  // to come and none is buffered. The content counts as read from then on (the exchange
  // moves it, or the connection ends); the downstream leaves the socket unread until
  // body_socket_done().
  struct BodySocket {
    int fd = -1;  // -1: not offered, read_request_body as usual
    uint64_t left = 0;
  };
  virtual BodySocket take_body_socket(uint64_t /*min_left*/) { return {}; }
  virtual void body_socket_done() {}

  // The upstream's response: the head, its content in pieces (moved out of `from`), its
  // end. response_buffered is how much of it waits to be written to the client.
  virtual void begin_response(const http::ResponseHead& head) = 0;
  virtual void response_body(evbuffer* from, std::size_t n) = 0;
  virtual void end_response() = 0;
  virtual std::size_t response_buffered() const = 0;
  // The exchange pauses the upstream above `high` bytes of response_buffered; the
  // downstream calls on_client_drained once it is below high / 2.
  virtual void set_response_watermark(std::size_t high) = 0;

 protected:
  ~HttpDownstream() = default;
};

}  // namespace wsgate::gateway
