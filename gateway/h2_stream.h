// One request stream of an HTTP/2 connection. A WebSocket (RFC 8441 extended CONNECT)
// stream is bridged to an unchanged H1Session through a libevent bufferevent pair:
//
//   client DATA --> [our pair end] ==pair==> [H1Session's end] --> Relay --> backend
//   client DATA <-- data provider  <==pair== [H1Session's end] <-- Relay <-- backend
//
// The stream writes the mapped HTTP/1.1 upgrade request into the pair (h2_mapping.h),
// so routing, Origin policy, balancing, the backend handshake and the relay are the
// HTTP/1.1 code path. It reads the HTTP/1.1 answer back, maps it to HTTP/2 headers, and
// then moves bytes both ways. Flow control is the backpressure (STYLE.md habit 6): a
// DATA payload's credit is returned (nghttp2_session_consume) only when the Relay takes
// the bytes out of its end of the pair, so a stalled backend stops this stream's client
// window and nothing else.
//
// Ownership: the H2Session owns its streams; the Worker owns the H1Session (which it
// drains like any other). Each side tells the other when it goes (on_done /
// detach_observer), and the pair end each holds is freed with it.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/h1_session.h"
#include "gateway/h2_mapping.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

class H2Session;

class H2Stream {
 public:
  enum class State {
    ReadingHeaders,  // HEADERS/CONTINUATION arriving
    Handshaking,     // the H1Session routes and talks to a backend; no answer yet
    Relaying,        // 200 sent: WebSocket bytes both ways as DATA frames
    ForwardingBody,  // a non-101 answer: its body goes out as DATA, then END_STREAM
    LocalResponse,   // our own error answer (the request could not be mapped)
    Done,            // the response is complete (or the stream was reset)
  };

  H2Stream(H2Session& session, int32_t id);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // nghttp2 events, from the session's callbacks.
  void on_header(std::string_view name, std::string_view value);
  void on_request_headers();
  void on_data(const uint8_t* data, std::size_t len);
  void on_end_stream();
  // The stream is closed (both ends done, or reset): detaches from the H1Session,
  // which then sees EOF (the relay closes the backend side with Close 1001).
  void on_closed(uint32_t error_code);

  // Work recorded by callbacks, done from the session's process step: return credit,
  // resume deferred DATA, send END_STREAM/RST_STREAM, pass on the client's EOF.
  void process();

  int32_t id() const { return id_; }
  State state() const { return state_; }
  bool client_ended() const { return client_ended_; }

 private:
  static void on_pair_read(bufferevent* bev, void* self);
  static void on_pair_event(bufferevent* bev, short what, void* self);
  static void on_relay_input_drained(evbuffer* buf, const evbuffer_cb_info* info, void* self);
  static ssize_t read_data(nghttp2_session* ng, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

 public:
  // NGHTTP2_DATA_FLAG_NO_COPY: the session's send_data callback moves the bytes.
  int send_data(const nghttp2_frame* frame, const uint8_t* framehd, std::size_t length);

 private:
  void start_h1(std::string request_head);
  void on_h1_done(const H1Session::Outcome& outcome);
  void read_response_head();
  void submit(const h2map::Fields& fields, bool with_body);
  void respond_locally(int status, std::string reason);
  void write_access_log(int status, std::string_view reason);
  void maybe_send_eof();
  void unlink_h1();

  H2Session& session_;
  const int32_t id_;
  State state_ = State::ReadingHeaders;
  h2map::Fields fields_;
  std::size_t header_bytes_ = 0;
  bool headers_too_large_ = false;

  BufferEventPtr pair_;              // our end; the H1Session holds the other
  H1Session* h1_ = nullptr;          // owned by the Worker; null once it is done
  evbuffer* relay_input_ = nullptr;  // the H1 end's input, watched while h1_ lives
  evbuffer_cb_entry* relay_input_cb_ = nullptr;
  std::size_t head_bytes_left_ = 0;  // request-head bytes ahead of DATA in relay_input_
  std::size_t unconsumed_ = 0;       // DATA bytes received and not yet taken by the relay
  std::size_t to_consume_ = 0;       // taken by the relay, credit not yet returned
  bool h1_done_ = false;
  bool upstream_vanished_ = false;
  bool client_ended_ = false;
  bool eof_sent_ = false;       // the H1 side was told the client is done
  bool data_deferred_ = false;  // our data provider said NGHTTP2_ERR_DEFERRED
  bool reset_pending_ = false;  // RST_STREAM(CANCEL) once the DATA is out
  bool body_until_close_ = false;
  uint64_t body_left_ = 0;  // ForwardingBody with a Content-Length
  std::string local_body_;  // LocalResponse
  bool tunnel_ = false;     // a plain CONNECT (RFC 9113 8.5): DATA carries the tunnel's bytes
  std::size_t local_sent_ = 0;
};

const char* to_string(H2Stream::State s);

}  // namespace wsgate::gateway
