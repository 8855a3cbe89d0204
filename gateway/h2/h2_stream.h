// One request stream of an HTTP/2 connection, as the Downstream of one exchange: its
// HEADERS (bounded like an HTTP/1.1 head) become the protocol-neutral request
// (gateway/h2/h2_mapping.h, no HTTP/1.1 text), answers go out as HEADERS and DATA, and once
// a WebSocket or tunnel is accepted its DATA frames feed the relay directly:
//
//   client DATA --> H2StreamEndpoint::input()  --> Relay --> upstream
//   client DATA <-- H2StreamEndpoint::output() <-- Relay <-- upstream
//                   (moved into DATA frames by the data provider, no copy)
//
// A forwarded HTTP request (any other request) goes through the stream itself as an
// HttpDownstream (gateway/exchange/http_downstream.h):
//
//   client DATA --> request_body_ --> HttpExchange --> upstream (HTTP/1.1)
//   client DATA <-- body_ (DATA frames, no copy)  <-- HttpExchange <-- upstream
//
// Flow control is the backpressure (STYLE.md habit 6): a DATA payload's credit is
// returned (nghttp2_session_consume) only when the Relay (or the HTTP exchange) takes the
// bytes, so a stalled upstream stops this stream's client window and nothing else
// (gateway/h2/h2_stream_endpoint.h).
//
// Ownership: the H2Session owns its streams; the Worker owns the exchange, which a
// stream borrows and detaches from when it goes first (a reset while the relay still
// closes the upstream side); the relay owns the endpoint, which the stream borrows.
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/exchange/downstream.h"
#include "gateway/h2/h2_mapping.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

class Exchange;
class H2Session;
class H2StreamEndpoint;

class H2Stream final : public Downstream, public HttpDownstream {
 public:
  enum class State {
    ReadingHeaders,  // HEADERS/CONTINUATION arriving
    Exchanging,      // the exchange decides and reaches the upstream; no answer yet
    Answering,       // an answer goes out: ours, the upstream's refusal, or a forwarded
                     // request's response
    Relaying,        // 200 sent: WebSocket or tunnel bytes both ways as DATA frames
    Done,            // the response is complete (or the stream was reset)
  };

  H2Stream(H2Session& session, int32_t id);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // nghttp2 events, from the session's callbacks.
  void on_header(std::string_view name, std::string_view value);
  // The request's header block is complete; `end_stream`: it has no content.
  void on_request_headers(bool end_stream);
  void on_data(const uint8_t* data, std::size_t len);
  void on_end_stream();
  // The stream is closed (both ends done, or reset): the exchange hears the client is
  // gone; a relay sees EOF (and sends the upstream Close 1001) or, for a reset tunnel,
  // an error (and resets the target).
  void on_closed(uint32_t error_code);

  // Work recorded by callbacks, done from the session's process step: return credit,
  // resume deferred DATA, send END_STREAM/RST_STREAM, pass on the client's EOF.
  void process();

  int32_t id() const { return id_; }
  State state() const { return state_; }
  bool client_ended() const { return client_ended_; }
  // NGHTTP2_DATA_FLAG_NO_COPY: the session's send_data callback moves the bytes.
  int send_data(const nghttp2_frame* frame, const uint8_t* framehd, std::size_t length);

  // Downstream.
  const DownstreamFacts& facts() const override;
  int websocket_accepted_status() const override { return 200; }  // RFC 8441 5
  void refuse(const http::Refusal& refusal) override;
  ClientChannel accept_websocket(const http1::ResponseHead& upgrade) override;
  ClientChannel accept_tunnel() override;
  void begin_upstream_answer(const http1::ResponseHead& head) override;
  void upstream_answer_body(evbuffer* from, std::size_t n) override;
  void end_upstream_answer() override;
  void exchange_finished(const ExchangeEnd& end) override;
  HttpDownstream* http() override { return forwarding_ ? this : nullptr; }

  // HttpDownstream: a forwarded request's content in, its response out.
  BodyRead read_request_body(evbuffer* to, std::size_t max) override;
  void continue_request_body() override;
  void begin_response(const http::ResponseHead& head) override;
  void response_body(evbuffer* from, std::size_t n) override;
  void end_response() override;
  std::size_t response_buffered() const override;
  void set_response_watermark(std::size_t high) override { response_high_ = high; }

  // From the relay's endpoint (gateway/h2/h2_stream_endpoint.h).
  void credit_taken(std::size_t n);  // the relay took n DATA bytes
  void output_ready();               // output() has bytes, or END_STREAM is wanted
  void reset_output(bool abandon);   // RST_STREAM: CANCEL, or CONNECT_ERROR for a tunnel
  // The relay's endpoint is destroyed; `unsent` (its output) may still be promised to a
  // DATA frame nghttp2 holds back (a full client socket), so the stream keeps it.
  void endpoint_gone(evbuffer* unsent);

 private:
  static ssize_t read_data(nghttp2_session* ng, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  void submit(const h2map::Fields& fields, bool with_body);
  // Bytes for the client are waiting: from now on, sending none of them for the
  // listener's http2_send_timeout resets the stream.
  void watch_send_stall();
  void on_send_stall_timer();
  ClientChannel open_relay(h2map::Fields response);
  evbuffer* outgoing() const;
  void unlink_endpoint(bool failed);

  H2Session& session_;
  const int32_t id_;
  State state_ = State::ReadingHeaders;
  h2map::Fields fields_;
  std::size_t header_bytes_ = 0;
  bool headers_too_large_ = false;
  Exchange* exchange_ = nullptr;  // owned by the Worker; null when none or finished

  H2StreamEndpoint* endpoint_ = nullptr;  // Relaying: owned by the relay; null once gone
  std::size_t unconsumed_ = 0;            // DATA bytes received and not yet taken by the relay
  std::size_t to_consume_ = 0;            // taken by the relay, credit not yet returned
  EvbufferPtr early_data_;                // Exchanging: DATA sent before the 2xx, for the relay
  EvbufferPtr body_;                      // Answering: the response body waiting for DATA frames
  EvbufferPtr orphan_out_;                // Relaying, endpoint gone: its output not yet sent
  bool body_complete_ = false;            // Answering: nothing more will be added to body_
  bool last_data_framed_ = false;         // Answering: the DATA frame with END_STREAM is out
  bool exchange_done_ = false;
  bool upstream_failed_ = false;
  bool client_ended_ = false;
  bool data_deferred_ = false;  // our data provider said NGHTTP2_ERR_DEFERRED
  bool reset_pending_ = false;  // RST_STREAM at the next process()
  uint32_t reset_code_ = 0;
  bool tunnel_ = false;  // accept_tunnel(): a failure resets with CONNECT_ERROR

  // HTTP forwarding: the request is neither an RFC 8441 WebSocket nor a tunnel.
  bool forwarding_ = false;
  EvbufferPtr request_body_;         // DATA received, not yet taken by the exchange
  bool expect_continue_ = false;     // Expect: 100-continue, not yet answered
  bool response_begun_ = false;      // begin_response was called
  std::size_t response_high_ = 0;    // the exchange's watermark for body_
  bool body_ready_pending_ = false;  // process(): tell the exchange about new content
  bool drained_pending_ = false;     // process(): tell the exchange body_ drained
  // The send stall deadline: armed while bytes wait for the client; sending any of them
  // moves the start of the wait.
  Timer stall_timer_;
  std::chrono::steady_clock::time_point waiting_since_;
};

const char* to_string(H2Stream::State s);

}  // namespace wsgate::gateway
