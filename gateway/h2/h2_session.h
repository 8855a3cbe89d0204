// One downstream HTTP/2 connection (RFC 9113): an nghttp2 server session over the
// client's bufferevent (TLS that chose h2 by ALPN, or plain h2c with prior knowledge).
// It advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 3) and runs one H2Stream per
// request; each stream is the downstream of one exchange (h2_stream.h).
//
// Ownership: the Worker owns the session (Worker::start_h2); the session owns its
// client bufferevent, the nghttp2 session and its streams. Streams that close are
// destroyed at the end of the loop iteration; the session tells the Worker when the
// connection is over (Worker::h2_session_done), never deleting itself.
// Threading: everything runs on the worker's event loop.
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "gateway/client_limits.h"
#include "gateway/exchange/downstream.h"
#include "proxy/libevent_ptr.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class H2Stream;
class Worker;

class H2Session {
 public:
  enum class State {
    Running,   // streams come and go
    Draining,  // GOAWAY sent: no new streams; ends when the last one has
    Closing,   // flushing what is left (no more reading; handshake_timeout), then the
               // socket closes
    Done,
  };

  H2Session(Worker& worker, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
            const conf::Listener& listener, BufferEventPtr client, DownstreamFacts facts);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Sends our SETTINGS and reads whatever the client already sent (its preface).
  void start();
  // Graceful shutdown: GOAWAY; the streams' exchanges get Close 1001 from the Worker.
  void drain();
  // The TCP connection's place in the [limits] counts, released with the session. Its
  // verdict is not answered: each WebSocket stream is admitted (and answered) on its own.
  void hold_admission(ClientLimits::Decision admission) { admission_ = std::move(admission); }

  // For streams.
  nghttp2_session* ng() const { return ng_; }
  Worker& worker() const { return worker_; }
  const conf::ConfigPtr& config() const { return config_; }
  const tls::TlsSnapshotPtr& tls() const { return tls_; }
  const conf::Listener& listener() const { return listener_; }
  const DownstreamFacts& facts() const { return facts_; }
  evbuffer* client_output() const;
  // Bytes waiting for the client socket; above this, frames wait in nghttp2.
  bool client_output_full() const;
  // The stream has work (credit to return, data to resume): run it soon, then send.
  void mark_dirty(int32_t stream_id);
  // Connection-level credit for DATA that no stream will consume (closed streams).
  void return_connection_credit(std::size_t n) { connection_credit_ += n; }

 private:
  static void on_read(bufferevent* bev, void* self);
  static void on_write(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  static void on_process(evutil_socket_t fd, short what, void* self);

  // nghttp2 callbacks (user_data is the H2Session).
  static ssize_t send_cb(nghttp2_session* ng, const uint8_t* data, size_t length, int flags,
                         void* self);
  static int on_begin_headers_cb(nghttp2_session* ng, const nghttp2_frame* frame, void* self);
  static int on_header_cb(nghttp2_session* ng, const nghttp2_frame* frame, const uint8_t* name,
                          size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                          void* self);
  static int on_frame_recv_cb(nghttp2_session* ng, const nghttp2_frame* frame, void* self);
  static int on_data_chunk_recv_cb(nghttp2_session* ng, uint8_t flags, int32_t stream_id,
                                   const uint8_t* data, size_t len, void* self);
  static int on_frame_send_cb(nghttp2_session* ng, const nghttp2_frame* frame, void* self);
  static int on_stream_close_cb(nghttp2_session* ng, int32_t stream_id, uint32_t error_code,
                                void* self);

  H2Stream* find(int32_t stream_id) const;
  // RFC 8441 streams start upstream connects at once: a token bucket per connection
  // bounds how fast a client may open them (rapid reset). False: refuse this one.
  bool take_stream_token();
  void on_deadline();
  void enter_closing();
  void read_input();
  void process();
  void send();
  void maybe_close();
  void fail(std::string_view why);
  void finish();

  Worker& worker_;
  conf::ConfigPtr config_;
  tls::TlsSnapshotPtr tls_;
  const conf::Listener& listener_;
  DownstreamFacts facts_;
  BufferEventPtr client_;
  nghttp2_session* ng_ = nullptr;
  State state_ = State::Running;
  std::unordered_map<int32_t, std::unique_ptr<H2Stream>> streams_;
  std::vector<std::unique_ptr<H2Stream>> closed_streams_;  // destroyed in process()
  std::vector<int32_t> dirty_;
  std::size_t connection_credit_ = 0;
  bool goaway_pending_ = false;
  EventPtr process_event_;
  Timer idle_timer_;  // no stream for this long: GOAWAY and close
  // handshake_timeout: for the first request head from start(), for every header block
  // (request or trailers) from its HEADERS to its END_HEADERS (RFC 9113 6.10: nothing
  // else may come meanwhile), and for flushing our output once Closing.
  Timer deadline_;
  double stream_tokens_;
  std::chrono::steady_clock::time_point tokens_at_;
  double refusals_ = 0;  // streams refused, fading at the stream rate
  ClientLimits::Decision admission_;
};

const char* to_string(H2Session::State s);

}  // namespace wsgate::gateway
