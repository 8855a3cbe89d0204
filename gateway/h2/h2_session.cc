#include "gateway/h2/h2_session.h"

#include <event2/buffer.h>

#include <algorithm>
#include <array>

#include "gateway/h2/h2_stream.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "metrics/metric_names.h"

namespace wsgate::gateway {
namespace {

// Limits (RFC 9113 6.5.2). The stream window bounds what one stalled WebSocket can hold
// in the gateway; the connection window is the sum of all of them, so a stalled stream
// can never use up the credit its siblings need.
constexpr uint32_t kMaxConcurrentStreams = 100;
constexpr int32_t kStreamWindow = 256 * 1024;
constexpr int32_t kConnectionWindow = kStreamWindow * static_cast<int32_t>(kMaxConcurrentStreams);
// Frames for the client wait in nghttp2 above this much unsent output.
constexpr std::size_t kClientOutputHigh = 256 * 1024;
// An HTTP/2 connection with no stream for this long is closed (GOAWAY).
constexpr long long kIdleConnectionMs = 5 * 60 * 1000;
// New streams per connection: a burst of one full set of concurrent streams, then this
// many a second; a stream answered whole returns its token. Beyond: RST_STREAM(REFUSED_STREAM) (RFC
// 9113 8.7: the client may retry them), and a client that goes on to be refused a burst's worth
// more (refusals fade at the same rate) gets GOAWAY(ENHANCE_YOUR_CALM).
constexpr double kNewStreamBurst = kMaxConcurrentStreams;
constexpr double kNewStreamsPerSecond = 20;

int send_data_cb(nghttp2_session* /*ng*/, nghttp2_frame* frame, const uint8_t* framehd,
                 size_t length, nghttp2_data_source* source, void* /*self*/) {
  return static_cast<H2Stream*>(source->ptr)->send_data(frame, framehd, length);
}

}  // namespace

const char* to_string(H2Session::State s) {
  switch (s) {
    case H2Session::State::Running:
      return "running";
    case H2Session::State::Draining:
      return "draining";
    case H2Session::State::Closing:
      return "closing";
    case H2Session::State::Done:
      return "done";
  }
  return "?";
}

H2Session::H2Session(Worker& worker, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                     const conf::Listener& listener, BufferEventPtr client, DownstreamFacts facts)
    : worker_(worker),
      config_(std::move(config)),
      tls_(std::move(tls)),
      listener_(listener),
      facts_(std::move(facts)),
      client_(std::move(client)),
      idle_timer_(worker.base(), [this] { drain(); }),
      deadline_(worker.base(), [this] { on_deadline(); }),
      stream_tokens_(kNewStreamBurst),
      tokens_at_(std::chrono::steady_clock::now()) {
  process_event_.reset(event_new(worker.base(), -1, 0, &H2Session::on_process, this));

  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_send_callback(cbs, &H2Session::send_cb);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &send_data_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Session::on_begin_headers_cb);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Session::on_header_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Session::on_frame_recv_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Session::on_data_chunk_recv_cb);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &H2Session::on_frame_send_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Session::on_stream_close_cb);

  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Credit is returned by hand, as the relay takes the bytes (STYLE.md habit 6).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // Request validation is h2_mapping's (RFC 9113 8.2/8.3, RFC 8441 4), so that a bad
  // extended CONNECT gets a status with a reason instead of a bare stream reset.
  nghttp2_option_set_no_http_messaging(opt, 1);
  // Flood protections (nghttp2's defaults, stated): at most 1000 queued SETTINGS/PING
  // acks (settings and ping floods), 32 settings per frame, 8 CONTINUATIONs, and a
  // token bucket of 1000 + 33/s incoming RST_STREAMs (rapid reset, CVE-2023-44487).
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_continuations(opt, 8);
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
  nghttp2_session_server_new2(&ng_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
}

H2Session::~H2Session() {
  // nghttp2 first (it calls nothing back when deleted), then the streams, which detach
  // from their exchanges; then the client bufferevent.
  nghttp2_session_del(ng_);
  ng_ = nullptr;
  streams_.clear();
  closed_streams_.clear();
}

void H2Session::start() {
  const std::array<nghttp2_settings_entry, 4> settings = {{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(listener_.max_header_bytes)},
      // RFC 8441 3: we accept extended CONNECT.
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
  }};
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);

  bufferevent_setwatermark(client_.get(), EV_READ, 0, 0);
  bufferevent_setwatermark(client_.get(), EV_WRITE, kClientOutputHigh / 2, 0);
  bufferevent_setcb(client_.get(), &H2Session::on_read, &H2Session::on_write, &H2Session::on_event,
                    this);
  bufferevent_enable(client_.get(), EV_READ | EV_WRITE);
  idle_timer_.arm_ms(kIdleConnectionMs);
  // Like an HTTP/1.1 connection's head: the first request must come in handshake_timeout.
  deadline_.arm_ms(listener_.handshake_timeout.count());
  read_input();  // the preface may have come with the TLS handshake or the h2c sniff
  send();
}

evbuffer* H2Session::client_output() const {
  return bufferevent_get_output(client_.get());
}

bool H2Session::client_output_full() const {
  return evbuffer_get_length(client_output()) >= kClientOutputHigh;
}

void H2Session::on_read(bufferevent* /*bev*/, void* self) {
  auto* s = static_cast<H2Session*>(self);
  s->read_input();
  s->send();
}

void H2Session::read_input() {
  if (state_ == State::Done || state_ == State::Closing) return;
  evbuffer* in = bufferevent_get_input(client_.get());
  // nghttp2 reads from contiguous memory: hand it each chain of the input in turn.
  while (evbuffer_get_length(in) > 0) {
    std::array<evbuffer_iovec, 8> vec{};
    const int n = evbuffer_peek(in, -1, nullptr, vec.data(), static_cast<int>(vec.size()));
    std::size_t taken = 0;
    for (int i = 0; i < n && i < static_cast<int>(vec.size()); ++i) {
      const ssize_t rv = nghttp2_session_mem_recv(ng_, static_cast<const uint8_t*>(vec[i].iov_base),
                                                  vec[i].iov_len);
      if (rv < 0) {
        evbuffer_drain(in, evbuffer_get_length(in));
        fail(nghttp2_strerror(static_cast<int>(rv)));
        return;
      }
      taken += vec[i].iov_len;
    }
    evbuffer_drain(in, taken);
  }
}

void H2Session::on_write(bufferevent* /*bev*/, void* self) {
  auto* s = static_cast<H2Session*>(self);
  s->send();
}

void H2Session::on_event(bufferevent* /*bev*/, short what, void* self) {
  auto* s = static_cast<H2Session*>(self);
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) s->finish();
}

void H2Session::mark_dirty(int32_t stream_id) {
  dirty_.push_back(stream_id);
  event_active(process_event_.get(), EV_TIMEOUT, 0);
}

void H2Session::on_process(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  static_cast<H2Session*>(self)->process();
}

void H2Session::process() {
  closed_streams_.clear();  // deferred deletion: no callback of theirs is on the stack
  if (state_ == State::Done) return;
  std::vector<int32_t> dirty;
  dirty.swap(dirty_);
  for (int32_t id : dirty)
    if (H2Stream* s = find(id)) s->process();
  if (connection_credit_ > 0) {
    nghttp2_session_consume_connection(ng_, connection_credit_);
    connection_credit_ = 0;
  }
  send();
  if (goaway_pending_ && state_ == State::Draining) {
    goaway_pending_ = false;
    // RFC 9113 6.8: streams up to the last one we processed still complete.
    nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    send();
  }
}

void H2Session::send() {
  if (state_ == State::Done) return;
  const int rv = nghttp2_session_send(ng_);
  if (rv != 0) {
    fail(nghttp2_strerror(rv));
    return;
  }
  maybe_close();
}

void H2Session::maybe_close() {
  if (state_ == State::Done) return;
  // RFC 9113 6.8: after GOAWAY both ways, or a fatal error, nghttp2 wants nothing more.
  if (state_ != State::Closing && nghttp2_session_want_read(ng_) == 0 &&
      nghttp2_session_want_write(ng_) == 0) {
    enter_closing();
  }
  if (state_ == State::Closing && evbuffer_get_length(client_output()) == 0) finish();
}

void H2Session::drain() {
  if (state_ != State::Running) return;
  state_ = State::Draining;
  idle_timer_.cancel();
  // The GOAWAY goes out from process(), after the streams' pending DATA (RFC 9113 6.8:
  // the open streams go on). The Worker closes the streams' relays with 1001, at once or
  // spread over drain_spread (gateway/worker_drain.cc).
  goaway_pending_ = true;
  event_active(process_event_.get(), EV_TIMEOUT, 0);
}

void H2Session::fail(std::string_view why) {
  if (state_ == State::Done || state_ == State::Closing) return;
  log::warn("HTTP/2 connection from " + facts_.client_addr + " failed: " + std::string(why));
  // nghttp2 has queued a GOAWAY where the protocol asks for one; flush it, then close.
  enter_closing();
  nghttp2_session_send(ng_);
  maybe_close();
}

void H2Session::enter_closing() {
  state_ = State::Closing;
  idle_timer_.cancel();
  // Nothing the client sends matters any more: stop reading (its bytes must not pile up
  // in our input), and give the flush a deadline (a client that does not read).
  bufferevent_disable(client_.get(), EV_READ);
  evbuffer* in = bufferevent_get_input(client_.get());
  evbuffer_drain(in, evbuffer_get_length(in));
  deadline_.arm_ms(listener_.handshake_timeout.count());
}

void H2Session::on_deadline() {
  if (state_ == State::Done) return;
  if (state_ == State::Closing) {
    finish();  // the client did not take our last frames in time
    return;
  }
  // A request head (the first one, or a header block waiting for its CONTINUATION) did
  // not arrive in handshake_timeout, as HTTP/1.1 answers 408.
  log::info("HTTP/2 connection from " + facts_.client_addr +
            ": no complete request head within handshake_timeout; closing");
  nghttp2_session_terminate_session(ng_, NGHTTP2_NO_ERROR);
  send();
}

bool H2Session::take_stream_token() {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_at_ = now;
  stream_tokens_ = std::min(kNewStreamBurst, stream_tokens_ + elapsed * kNewStreamsPerSecond);
  // Refusals fade at the same rate: a client that retries slowly is never cut off.
  refusals_ = std::max(0.0, refusals_ - elapsed * kNewStreamsPerSecond);
  if (stream_tokens_ >= 1) {
    stream_tokens_ -= 1;
    return true;
  }
  refusals_ += 1;
  worker_.metrics().limit_rejection(metrics::names::kLimitH2StreamRate);
  return false;
}

void H2Session::finish() {
  if (state_ == State::Done) return;
  state_ = State::Done;
  idle_timer_.cancel();
  deadline_.cancel();
  bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
  worker_.h2_session_done(this);
}

H2Stream* H2Session::find(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

ssize_t H2Session::send_cb(nghttp2_session* /*ng*/, const uint8_t* data, size_t length,
                           int /*flags*/, void* self) {
  auto* s = static_cast<H2Session*>(self);
  if (s->client_output_full()) return NGHTTP2_ERR_WOULDBLOCK;  // the write callback resumes
  evbuffer_add(s->client_output(), data, length);
  return static_cast<ssize_t>(length);
}

int H2Session::on_begin_headers_cb(nghttp2_session* ng, const nghttp2_frame* frame, void* self) {
  auto* s = static_cast<H2Session*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  // Every header block (a request's, or trailers on an open stream) must be complete in
  // handshake_timeout: the connection is pinned until its END_HEADERS (RFC 9113 6.10).
  s->deadline_.arm_ms(s->listener_.handshake_timeout.count());
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  const int32_t id = frame->hd.stream_id;
  if (!s->take_stream_token()) {
    if (s->refusals_ > kNewStreamBurst) {
      log::warn("HTTP/2 connection from " + s->facts_.client_addr +
                " keeps opening streams over the rate limit; closing");
      nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
      return 0;
    }
    // No H2Stream: its header fields and frames are ignored.
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  auto stream = std::make_unique<H2Stream>(*s, id);
  nghttp2_session_set_stream_user_data(s->ng_, id, stream.get());
  s->streams_.emplace(id, std::move(stream));
  s->idle_timer_.cancel();
  return 0;
}

int H2Session::on_header_cb(nghttp2_session* /*ng*/, const nghttp2_frame* frame,
                            const uint8_t* name, size_t namelen, const uint8_t* value,
                            size_t valuelen, uint8_t /*flags*/, void* self) {
  auto* s = static_cast<H2Session*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (H2Stream* stream = s->find(frame->hd.stream_id)) {
    stream->on_header(std::string_view(reinterpret_cast<const char*>(name), namelen),
                      std::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

int H2Session::on_frame_recv_cb(nghttp2_session* /*ng*/, const nghttp2_frame* frame, void* self) {
  auto* s = static_cast<H2Session*>(self);
  const bool request_head =
      frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST;
  // A header block is complete (the deadline in Closing is the flush's).
  if (frame->hd.type == NGHTTP2_HEADERS && s->state_ != State::Closing) s->deadline_.cancel();
  H2Stream* stream = s->find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  if (request_head) stream->on_request_headers((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    stream->on_end_stream();
  }
  return 0;
}

int H2Session::on_data_chunk_recv_cb(nghttp2_session* /*ng*/, uint8_t /*flags*/, int32_t stream_id,
                                     const uint8_t* data, size_t len, void* self) {
  auto* s = static_cast<H2Session*>(self);
  if (H2Stream* stream = s->find(stream_id)) {
    stream->on_data(data, len);
  } else {
    // DATA for a stream we no longer track still counts against the connection window.
    s->connection_credit_ += len;
    event_active(s->process_event_.get(), EV_TIMEOUT, 0);
  }
  return 0;
}

int H2Session::on_frame_send_cb(nghttp2_session* ng, const nghttp2_frame* frame, void* self) {
  auto* s = static_cast<H2Session*>(self);
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
    return 0;
  }
  // RFC 9113 8.1: our response is complete; a client still sending is asked to stop
  // without error.
  H2Stream* stream = s->find(frame->hd.stream_id);
  if (stream != nullptr && !stream->client_ended())
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

int H2Session::on_stream_close_cb(nghttp2_session* /*ng*/, int32_t stream_id, uint32_t error_code,
                                  void* self) {
  auto* s = static_cast<H2Session*>(self);
  auto it = s->streams_.find(stream_id);
  if (it == s->streams_.end()) return 0;
  // A stream whose response went out whole gives its token back: the rate bounds
  // streams reset before their answer (rapid reset), not a client's requests.
  if (error_code == NGHTTP2_NO_ERROR && it->second->state() == H2Stream::State::Done)
    s->stream_tokens_ = std::min(kNewStreamBurst, s->stream_tokens_ + 1);
  it->second->on_closed(error_code);
  s->closed_streams_.push_back(std::move(it->second));
  s->streams_.erase(it);
  event_active(s->process_event_.get(), EV_TIMEOUT, 0);
  if (s->streams_.empty() && s->state_ == State::Running) s->idle_timer_.arm_ms(kIdleConnectionMs);
  return 0;
}

}  // namespace wsgate::gateway
