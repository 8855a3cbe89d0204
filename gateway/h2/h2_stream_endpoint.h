// The client side of a relay whose client is an HTTP/2 stream (RFC 8441 WebSocket or
// RFC 9113 8.5 tunnel): DATA payloads go into input(), output() leaves as DATA frames
// through the stream's data provider without copying (NGHTTP2_DATA_FLAG_NO_COPY), and
// flow control is the backpressure: the client gets its credit back
// (nghttp2_session_consume) only for the bytes the relay took out of input(), so a
// paused relay closes this stream's window and nothing else (STYLE.md habit 6).
//
// The relay owns the endpoint (proxy/relay/endpoint.h has the contract); the stream
// (gateway/h2/h2_stream.h) borrows it while both live. Whichever goes first unlinks the
// other: a stream reset while the relay still closes the upstream side, or a relay
// destroyed with its exchange while the stream waits for nghttp2 to close it.
// Callbacks to the relay are deferred to an event of their own: they never run inside
// nghttp2's callbacks or inside a call the relay made.
#pragma once

#include <cstddef>
#include <cstdint>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/endpoint.h"

namespace wsgate::gateway {

class H2Stream;

class H2StreamEndpoint final : public proxy::Endpoint {
 public:
  H2StreamEndpoint(event_base* base, H2Stream& stream);
  ~H2StreamEndpoint() override;
  H2StreamEndpoint(const H2StreamEndpoint&) = delete;
  H2StreamEndpoint& operator=(const H2StreamEndpoint&) = delete;

  // --- from the stream ---
  // A DATA payload (its credit is returned as the relay takes it).
  void peer_data(const uint8_t* data, std::size_t len);
  // Early DATA the stream kept before the 2xx.
  void peer_data(evbuffer* kept);
  void peer_end();     // END_STREAM from the client
  void peer_failed();  // RST_STREAM from the client, or the connection is gone
  // The stream's data provider moved bytes out of output() into DATA frames.
  void moved_out();
  // The stream is gone: nothing more is asked of it.
  void stream_gone() { stream_ = nullptr; }
  bool write_shut() const { return write_shut_; }

  // --- proxy::Endpoint ---
  void attach(proxy::EndpointEvents& events, std::size_t low_watermark) override;
  void detach() override;
  evbuffer* input() override { return in_.get(); }
  evbuffer* output() override { return out_.get(); }
  void set_reading(bool on) override;
  void flush() override;
  bool can_half_close() const override { return true; }
  void shutdown_write() override;  // END_STREAM once output() is out
  void reset() override;           // RST_STREAM (CONNECT_ERROR for a tunnel, RFC 9113 8.5)
  void abandon() override;         // RST_STREAM CANCEL
  void finish() override;          // END_STREAM if it was not sent yet
  std::size_t unsent_bytes() const override;

 private:
  enum Pending : uint8_t { Readable = 1, Drained = 2, Eof = 4, Error = 8 };
  static void on_input_taken(evbuffer* buf, const evbuffer_cb_info* info, void* self);
  static void on_dispatch(evutil_socket_t fd, short what, void* self);
  void schedule(Pending p);

  H2Stream* stream_;
  EvbufferPtr in_;
  EvbufferPtr out_;
  EventPtr dispatch_;
  proxy::EndpointEvents* events_ = nullptr;
  std::size_t low_watermark_ = 0;
  uint8_t pending_ = 0;
  bool reading_ = false;
  bool write_shut_ = false;
  bool eof_ = false;
  bool failed_ = false;
};

}  // namespace wsgate::gateway
