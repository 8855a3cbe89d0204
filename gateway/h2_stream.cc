#include "gateway/h2_stream.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "gateway/error_response.h"
#include "gateway/h2_session.h"
#include "gateway/worker.h"
#include "proxy/http1_parser.h"
#include "proxy/websocket_key.h"

namespace wsgate::gateway {
namespace {

// Upstream -> client bytes waiting on our end of the pair; above this the pair stops
// moving them, the H1 end's output fills, and the relay stops reading the backend.
constexpr std::size_t kPairReadHigh = 256 * 1024;
// The HTTP/1.1 answer's head must fit in this much.
constexpr std::size_t kMaxResponseHead = 64 * 1024;
// RFC 7541 4.1: each field counts its name, its value and 32 bytes.
constexpr std::size_t kFieldOverhead = 32;

std::vector<nghttp2_nv> to_nv(const h2map::Fields& fields) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size());
  for (const auto& f : fields) {
    nv.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(f.name.data())),
                  const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(f.value.data())),
                  f.name.size(), f.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

}  // namespace

const char* to_string(H2Stream::State s) {
  switch (s) {
    case H2Stream::State::ReadingHeaders:
      return "reading_headers";
    case H2Stream::State::Handshaking:
      return "handshaking";
    case H2Stream::State::Relaying:
      return "relaying";
    case H2Stream::State::ForwardingBody:
      return "forwarding_body";
    case H2Stream::State::LocalResponse:
      return "local_response";
    case H2Stream::State::Done:
      return "done";
  }
  return "?";
}

H2Stream::H2Stream(H2Session& session, int32_t id) : session_(session), id_(id) {}

H2Stream::~H2Stream() {
  unlink_h1();
}

void H2Stream::on_header(std::string_view name, std::string_view value) {
  if (headers_too_large_) return;
  header_bytes_ += name.size() + value.size() + kFieldOverhead;
  const conf::Listener& l = session_.listener();
  if (header_bytes_ > l.max_header_bytes || fields_.size() + 1 > l.max_headers) {
    headers_too_large_ = true;  // answered with 431 once the block is complete
    fields_.clear();
    return;
  }
  fields_.push_back({std::string(name), std::string(value)});
}

void H2Stream::on_request_headers() {
  if (state_ != State::ReadingHeaders) return;
  if (headers_too_large_) {
    respond_locally(431, "request header list over " +
                             std::to_string(session_.listener().max_header_bytes) + " bytes or " +
                             std::to_string(session_.listener().max_headers) + " fields");
    return;
  }
  // RFC 9113 8.5: a plain CONNECT is a tunnel, served on listeners with connect = true
  // by the HTTP/1.1 CONNECT path (gateway/h1_connect.cc); elsewhere it gets 501 below.
  tunnel_ = session_.listener().connect && h2map::is_tunnel_request(fields_);
  h2map::RequestMapping m = tunnel_ ? h2map::tunnel_connect_to_h1(fields_)
                                    : h2map::extended_connect_to_h1(fields_, ws::generate_key());
  fields_.clear();
  if (!m.ok()) {
    respond_locally(m.status, std::move(m.reason));
    return;
  }
  start_h1(std::move(m.head));
}

void H2Stream::start_h1(std::string request_head) {
  state_ = State::Handshaking;
  Worker& worker = session_.worker();
  bufferevent* pair[2] = {nullptr, nullptr};
  if (bufferevent_pair_new(worker.base(), 0, pair) != 0) {
    respond_locally(500, "cannot create a stream pipe");
    return;
  }
  pair_.reset(pair[0]);
  BufferEventPtr theirs(pair[1]);
  bufferevent_setcb(pair_.get(), &H2Stream::on_pair_read, nullptr, &H2Stream::on_pair_event, this);
  bufferevent_setwatermark(pair_.get(), EV_READ, 0, kPairReadHigh);
  bufferevent_enable(pair_.get(), EV_READ | EV_WRITE);
  // What leaves the H1 end's input is what the relay took: that is when the client gets
  // its credit back.
  relay_input_ = bufferevent_get_input(theirs.get());
  relay_input_cb_ = evbuffer_add_cb(relay_input_, &H2Stream::on_relay_input_drained, this);
  head_bytes_left_ = request_head.size();
  bufferevent_write(pair_.get(), request_head.data(), request_head.size());

  DownstreamFacts facts = session_.facts();
  facts.protocol = "h2";
  // Each WebSocket stream is a connection for [limits]: counted until its H1Session ends,
  // and refused by that H1Session with 429/503 on this stream.
  ClientLimits::Decision admission = worker.admit_client(facts.client_ip);
  auto h1 = std::make_unique<H1Session>(
      worker, worker.next_connection_id(), session_.config(), session_.tls(), session_.listener(),
      std::move(theirs), std::move(facts),
      [this](const H1Session::Outcome& outcome) { on_h1_done(outcome); });
  h1->set_admission(std::move(admission));
  h1_ = worker.add_session(std::move(h1));
}

void H2Stream::on_relay_input_drained(evbuffer* /*buf*/, const evbuffer_cb_info* info, void* self) {
  auto* s = static_cast<H2Stream*>(self);
  std::size_t n = info->n_deleted;
  if (n == 0) return;
  const std::size_t head = std::min(n, s->head_bytes_left_);
  s->head_bytes_left_ -= head;
  n -= head;
  n = std::min(n, s->unconsumed_ - s->to_consume_);
  if (n == 0) return;
  s->to_consume_ += n;
  s->session_.mark_dirty(s->id_);
}

void H2Stream::on_data(const uint8_t* data, std::size_t len) {
  if (h1_ == nullptr || eof_sent_) {
    // Nobody will read these bytes: the credit goes back at once.
    nghttp2_session_consume(session_.ng(), id_, len);
    return;
  }
  unconsumed_ += len;
  bufferevent_write(pair_.get(), data, len);
}

void H2Stream::on_end_stream() {
  client_ended_ = true;
  session_.mark_dirty(id_);
}

void H2Stream::maybe_send_eof() {
  // The client ended its side (END_STREAM): once every byte it sent has reached the
  // H1 end (and the relay is reading it), the relay sees EOF and sends Close 1001 to the
  // backend, unless the close handshake already ended the relay. A tunnel's relay takes
  // what is buffered before it acts on the EOF (proxy/relay_raw.cc), so it need not be
  // reading: waiting for that would lose the EOF when the relay is paused by a full
  // target and nothing more arrives to wake this stream.
  if (!client_ended_ || eof_sent_ || h1_ == nullptr || state_ != State::Relaying) return;
  bufferevent* theirs = bufferevent_pair_get_partner(pair_.get());
  if (evbuffer_get_length(bufferevent_get_output(pair_.get())) != 0 || theirs == nullptr ||
      (!tunnel_ && (bufferevent_get_enabled(theirs) & EV_READ) == 0)) {
    return;
  }
  eof_sent_ = true;
  bufferevent_flush(pair_.get(), EV_WRITE, BEV_FINISHED);
}

void H2Stream::on_pair_read(bufferevent* /*bev*/, void* self) {
  auto* s = static_cast<H2Stream*>(self);
  if (s->state_ == State::Handshaking) {
    s->read_response_head();
    return;
  }
  if (s->data_deferred_) s->session_.mark_dirty(s->id_);
}

void H2Stream::on_pair_event(bufferevent* /*bev*/, short /*what*/, void* /*self*/) {
  // The H1 end never flushes with BEV_FINISHED; its end is signalled by on_h1_done.
}

void H2Stream::read_response_head() {
  evbuffer* in = bufferevent_get_input(pair_.get());
  const std::size_t len = std::min(evbuffer_get_length(in), kMaxResponseHead);
  if (len == 0) return;
  const auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(len)));
  http1::ResponseHead head;
  const http1::ParseResult parsed = http1::parse_response_head(
      std::string_view(p, len), http1::Limits{kMaxResponseHead, 1000}, head);
  if (parsed.state == http1::ParseState::Incomplete) return;
  if (parsed.state == http1::ParseState::Error) {
    nghttp2_submit_rst_stream(session_.ng(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    state_ = State::Done;
    session_.mark_dirty(id_);
    return;
  }
  evbuffer_drain(in, parsed.head_length);
  h2map::ResponseMapping m = h2map::h1_response_to_h2(head);
  if (tunnel_ && head.status == 200) {
    // RFC 9113 8.5: the 2xx opens the tunnel; DATA frames carry its bytes both ways.
    m = h2map::ResponseMapping{};
    m.fields.push_back({":status", "200"});
    m.websocket = true;
  }
  if (m.websocket) {
    state_ = State::Relaying;
  } else {
    state_ = State::ForwardingBody;
    body_left_ = m.content_length;
    body_until_close_ = m.body_until_close;
  }
  submit(m.fields, m.websocket || m.has_body);
  if (!m.websocket && !m.has_body) state_ = State::Done;
  session_.mark_dirty(id_);
}

void H2Stream::submit(const h2map::Fields& fields, bool with_body) {
  const std::vector<nghttp2_nv> nv = to_nv(fields);
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = &H2Stream::read_data;
  nghttp2_submit_response(session_.ng(), id_, nv.data(), nv.size(),
                          with_body ? &provider : nullptr);
}

void H2Stream::respond_locally(int status, std::string reason) {
  write_access_log(status, reason);
  state_ = State::LocalResponse;
  local_body_ = std::move(reason);
  local_body_.push_back('\n');
  submit({{":status", std::to_string(status)},
          {"content-type", "text/plain; charset=utf-8"},
          {"content-length", std::to_string(local_body_.size())}},
         true);
  session_.mark_dirty(id_);
}

ssize_t H2Stream::read_data(nghttp2_session* /*ng*/, int32_t /*stream_id*/, uint8_t* buf,
                            size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                            void* /*user_data*/) {
  auto* s = static_cast<H2Stream*>(source->ptr);
  if (s->state_ == State::LocalResponse) {
    const std::size_t n = std::min(length, s->local_body_.size() - s->local_sent_);
    std::memcpy(buf, s->local_body_.data() + s->local_sent_, n);
    s->local_sent_ += n;
    if (s->local_sent_ == s->local_body_.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      s->state_ = State::Done;
    }
    return static_cast<ssize_t>(n);
  }
  std::size_t avail = s->pair_ ? evbuffer_get_length(bufferevent_get_input(s->pair_.get())) : 0;
  const bool counted = s->state_ == State::ForwardingBody && !s->body_until_close_;
  if (counted) avail = std::min<uint64_t>(avail, s->body_left_);
  const bool body_complete = counted && s->body_left_ == 0;
  if (avail == 0) {
    if (body_complete || (s->h1_done_ && !s->upstream_vanished_)) {
      // The relay finished after its close handshake, or the answer's body is complete.
      *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_COPY;
      s->state_ = State::Done;
      return 0;
    }
    if (s->h1_done_) s->reset_pending_ = true;  // the backend vanished: RST_STREAM(CANCEL)
    s->data_deferred_ = true;
    if (s->h1_done_) s->session_.mark_dirty(s->id_);
    return NGHTTP2_ERR_DEFERRED;
  }
  const std::size_t n = std::min(avail, length);
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (counted) s->body_left_ -= n;
  return static_cast<ssize_t>(n);
}

int H2Stream::send_data(const nghttp2_frame* frame, const uint8_t* framehd, std::size_t length) {
  // A full socket buffer: nghttp2 keeps the frame and the session's write callback
  // sends again (the bytes wait in the pair meanwhile).
  if (session_.client_output_full()) return NGHTTP2_ERR_WOULDBLOCK;
  evbuffer* out = session_.client_output();
  // RFC 9113 6.1: the 9-byte frame header, then the payload moved from the pair without
  // copying its chains (we never add padding, so there is no pad length byte).
  evbuffer_add(out, framehd, 9);
  if (length > 0) evbuffer_remove_buffer(bufferevent_get_input(pair_.get()), out, length);
  (void)frame;
  return 0;
}

void H2Stream::on_h1_done(const H1Session::Outcome& outcome) {
  // Called from inside the H1Session (finishing, or being destroyed): record and defer.
  h1_done_ = true;
  upstream_vanished_ = outcome.upstream_vanished;
  if (relay_input_cb_ != nullptr) evbuffer_remove_cb_entry(relay_input_, relay_input_cb_);
  relay_input_cb_ = nullptr;
  relay_input_ = nullptr;
  h1_ = nullptr;
  session_.mark_dirty(id_);
}

void H2Stream::process() {
  nghttp2_session* ng = session_.ng();
  if (to_consume_ > 0) {
    nghttp2_session_consume(ng, id_, to_consume_);
    unconsumed_ -= to_consume_;
    to_consume_ = 0;
  }
  if (state_ == State::Handshaking && h1_done_) {
    // Whatever answer the H1 side wrote is in our input by now.
    read_response_head();
    if (state_ == State::Handshaking) {
      nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
      state_ = State::Done;
    }
  }
  if (reset_pending_) {
    reset_pending_ = false;
    // The backend's TCP connection ended without a Close (its 1011 went out as DATA);
    // a tunnel's target connection failed: RFC 9113 8.5 says CONNECT_ERROR.
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id_,
                              tunnel_ ? NGHTTP2_CONNECT_ERROR : NGHTTP2_CANCEL);
    state_ = State::Done;
    return;
  }
  if (data_deferred_ && (state_ == State::Relaying || state_ == State::ForwardingBody)) {
    data_deferred_ = false;
    nghttp2_session_resume_data(ng, id_);
  }
  maybe_send_eof();
}

void H2Stream::on_closed(uint32_t error_code) {
  if (tunnel_ && error_code != NGHTTP2_NO_ERROR && pair_ && !eof_sent_) {
    // RFC 9113 8.5: a reset tunnel stream resets the target's TCP connection. The H1
    // end hears an error instead of an EOF (deferred: the relay must not run inside
    // nghttp2's callback), and proxy/relay_raw.cc resets the target.
    if (bufferevent* theirs = bufferevent_pair_get_partner(pair_.get())) {
      eof_sent_ = true;
      bufferevent_trigger_event(theirs, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
    }
  }
  // DATA received but never taken by the relay: the connection window gets it back.
  session_.return_connection_credit(unconsumed_);
  unconsumed_ = 0;
  to_consume_ = 0;
  state_ = State::Done;
  unlink_h1();
}

void H2Stream::unlink_h1() {
  if (h1_ != nullptr) {
    h1_->detach_observer();
    h1_ = nullptr;
  }
  if (relay_input_cb_ != nullptr) evbuffer_remove_cb_entry(relay_input_, relay_input_cb_);
  relay_input_cb_ = nullptr;
  relay_input_ = nullptr;
  if (pair_) {
    // Reset or finished: bytes the relay has not taken are dropped, and the H1 end sees
    // EOF (a relaying H1Session sends Close 1001 to the backend; RFC 8441 does the same
    // for a stream reset).
    evbuffer_drain(bufferevent_get_output(pair_.get()),
                   evbuffer_get_length(bufferevent_get_output(pair_.get())));
    if (!eof_sent_ && bufferevent_pair_get_partner(pair_.get()) != nullptr) {
      eof_sent_ = true;
      bufferevent_flush(pair_.get(), EV_WRITE, BEV_FINISHED);
    }
    bufferevent_setcb(pair_.get(), nullptr, nullptr, nullptr, nullptr);
    pair_.reset();
  }
}

void H2Stream::write_access_log(int status, std::string_view reason) {
  metrics::AccessRecord r;
  const DownstreamFacts& f = session_.facts();
  r.client = f.client_addr;
  r.listener = session_.listener().name;
  r.route = "-";
  r.upstream = "-";
  r.status = status;
  r.reason = reason;
  r.tls_version = f.tls_version;
  r.client_subject = f.client_subject;
  r.protocol = "h2";
  session_.worker().access_log().write(r);
}

}  // namespace wsgate::gateway
