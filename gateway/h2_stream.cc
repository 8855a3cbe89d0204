#include "gateway/h2_stream.h"

#include <event2/buffer.h>

#include <algorithm>
#include <vector>

#include "gateway/exchange/exchange.h"
#include "gateway/h2_session.h"
#include "gateway/worker.h"

namespace wsgate::gateway {
namespace {

// Upstream -> client bytes waiting on our end of the pair; above this the pair stops
// moving them, the relay side's output fills, and the relay stops reading the upstream.
constexpr std::size_t kPairReadHigh = 256 * 1024;
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

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

const char* to_string(H2Stream::State s) {
  switch (s) {
    case H2Stream::State::ReadingHeaders:
      return "reading_headers";
    case H2Stream::State::Exchanging:
      return "exchanging";
    case H2Stream::State::Answering:
      return "answering";
    case H2Stream::State::Relaying:
      return "relaying";
    case H2Stream::State::Done:
      return "done";
  }
  return "?";
}

H2Stream::H2Stream(H2Session& session, int32_t id)
    : session_(session),
      id_(id),
      stall_timer_(session.worker().base(), [this] { on_send_stall_timer(); }) {}

H2Stream::~H2Stream() {
  if (Exchange* e = std::exchange(exchange_, nullptr)) e->detach_downstream();
  unlink_pair();
}

const DownstreamFacts& H2Stream::facts() const {
  return session_.facts();
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
  state_ = State::Exchanging;
  http::Checked<http::RequestHead> request;
  if (headers_too_large_) {
    const conf::Listener& l = session_.listener();
    request.refusal = {431,
                       "request header list over " + std::to_string(l.max_header_bytes) +
                           " bytes or " + std::to_string(l.max_headers) + " fields",
                       {}};
  } else {
    request = h2map::request_from_h2(fields_);
  }
  fields_.clear();
  fields_.shrink_to_fit();
  Worker& worker = session_.worker();
  // Each stream is a connection for [limits]: counted until its exchange ends, and
  // refused by it with 429/503 on this stream.
  ClientLimits::Decision admission = worker.admit_client(session_.facts().client_ip);
  exchange_ = worker.add_exchange(
      Exchange::make(ExchangeContext{worker, worker.next_connection_id(), session_.config(),
                                     session_.tls(), session_.listener()},
                     *this, std::move(request), std::move(admission)));
  exchange_->start();
}

void H2Stream::submit(const h2map::Fields& fields, bool with_body) {
  const std::vector<nghttp2_nv> nv = to_nv(fields);
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = &H2Stream::read_data;
  nghttp2_submit_response(session_.ng(), id_, nv.data(), nv.size(),
                          with_body ? &provider : nullptr);
  session_.mark_dirty(id_);
  if (with_body) watch_send_stall();
}

void H2Stream::watch_send_stall() {
  if (stall_timer_.pending() || state_ == State::Done) return;
  evbuffer* out = outgoing();
  if (out == nullptr || evbuffer_get_length(out) == 0) return;
  waiting_since_ = std::chrono::steady_clock::now();
  stall_timer_.arm_ms(session_.listener().http2_send_timeout.count());
}

void H2Stream::on_send_stall_timer() {
  evbuffer* out = outgoing();
  if (state_ == State::Done || out == nullptr || evbuffer_get_length(out) == 0) return;
  const auto limit = session_.listener().http2_send_timeout;
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - waiting_since_);
  if (waited < limit) {
    stall_timer_.arm_ms((limit - waited).count());  // some DATA went out meanwhile
    return;
  }
  // RFC 9113 6.9: the client keeps its window closed (or does not read at all) while our
  // bytes wait: they would be held for as long as it likes. The reset ends the exchange
  // as a client reset does (a relayed WebSocket's upstream gets Close 1001).
  nghttp2_submit_rst_stream(session_.ng(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
  state_ = State::Done;
  session_.mark_dirty(id_);
}

void H2Stream::refuse(const http::Refusal& refusal) {
  state_ = State::Answering;
  body_.reset(evbuffer_new());
  evbuffer_add(body_.get(), refusal.reason.data(), refusal.reason.size());
  evbuffer_add(body_.get(), "\n", 1);
  body_complete_ = true;
  h2map::Fields fields = {{":status", std::to_string(refusal.status)},
                          {"content-type", "text/plain; charset=utf-8"},
                          {"content-length", std::to_string(evbuffer_get_length(body_.get()))}};
  for (const auto& [name, value] : refusal.fields) {
    // RFC 9113 8.2.2: no connection-specific fields (a 426's Upgrade/Connection).
    std::string n = lowercase(name);
    if (n == "connection" || n == "upgrade") continue;
    fields.push_back({std::move(n), value});
  }
  submit(fields, true);
}

ClientChannel H2Stream::open_pair(h2map::Fields response) {
  state_ = State::Relaying;
  bufferevent* pair[2] = {nullptr, nullptr};
  if (bufferevent_pair_new(session_.worker().base(), 0, pair) != 0) return {};
  pair_.reset(pair[0]);
  BufferEventPtr theirs(pair[1]);
  bufferevent_setcb(pair_.get(), &H2Stream::on_pair_read, nullptr, nullptr, this);
  bufferevent_setwatermark(pair_.get(), EV_READ, 0, kPairReadHigh);
  bufferevent_enable(pair_.get(), EV_READ | EV_WRITE);
  // What leaves the relay side's input is what the relay took: that is when the client
  // gets its credit back.
  relay_input_ = bufferevent_get_input(theirs.get());
  relay_input_cb_ = evbuffer_add_cb(relay_input_, &H2Stream::on_relay_input_drained, this);
  if (early_data_) {
    bufferevent_write_buffer(pair_.get(), early_data_.get());
    early_data_.reset();
  }
  submit(response, true);
  return ClientChannel{std::move(theirs), false};
}

ClientChannel H2Stream::accept_websocket(const http1::ResponseHead& upgrade) {
  // RFC 8441 5: 200 with the upstream's end-to-end fields (subprotocol, extensions).
  return open_pair(h2map::h1_response_to_h2(upgrade).fields);
}

ClientChannel H2Stream::accept_tunnel() {
  // RFC 9113 8.5: the 2xx opens the tunnel; DATA frames carry its bytes both ways.
  tunnel_ = true;
  return open_pair({{":status", "200"}});
}

void H2Stream::begin_upstream_answer(const http1::ResponseHead& head) {
  const h2map::ResponseMapping m = h2map::h1_response_to_h2(head);
  state_ = State::Answering;
  body_.reset(evbuffer_new());
  body_complete_ = !m.has_body;
  submit(m.fields, m.has_body);
}

void H2Stream::upstream_answer_body(evbuffer* from, std::size_t n) {
  if (state_ != State::Answering || body_complete_) {
    evbuffer_drain(from, n);
    return;
  }
  if (early_data_) {
    // The request's early DATA will never be read: its credit goes back.
    unconsumed_ -= std::min(unconsumed_, evbuffer_get_length(early_data_.get()));
    nghttp2_session_consume(session_.ng(), id_, evbuffer_get_length(early_data_.get()));
    early_data_.reset();
  }
  evbuffer_remove_buffer(from, body_.get(), n);
  if (data_deferred_) session_.mark_dirty(id_);
  watch_send_stall();
}

void H2Stream::end_upstream_answer() {
  body_complete_ = true;
  session_.mark_dirty(id_);
}

void H2Stream::exchange_finished(const ExchangeEnd& end) {
  // Called from inside the exchange: record and defer.
  exchange_ = nullptr;
  exchange_done_ = true;
  upstream_failed_ = end.upstream_failed;
  if (relay_input_cb_ != nullptr) evbuffer_remove_cb_entry(relay_input_, relay_input_cb_);
  relay_input_cb_ = nullptr;
  relay_input_ = nullptr;
  session_.mark_dirty(id_);
}

void H2Stream::on_relay_input_drained(evbuffer* /*buf*/, const evbuffer_cb_info* info, void* self) {
  auto* s = static_cast<H2Stream*>(self);
  const std::size_t n = std::min(info->n_deleted, s->unconsumed_ - s->to_consume_);
  if (n == 0) return;
  s->to_consume_ += n;
  s->session_.mark_dirty(s->id_);
}

void H2Stream::on_data(const uint8_t* data, std::size_t len) {
  if (state_ == State::Exchanging && !exchange_done_) {
    // Sent before our answer: kept for the relay (its credit waits with it).
    if (!early_data_) early_data_.reset(evbuffer_new());
    unconsumed_ += len;
    evbuffer_add(early_data_.get(), data, len);
    return;
  }
  if (state_ != State::Relaying || !pair_ || exchange_done_ || eof_sent_) {
    // Nobody will read these bytes (RFC 8441 and RFC 9113 8.5 requests have no body
    // before the 2xx): the credit goes back at once.
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
  // relay side (and the relay is reading it), the relay sees EOF and sends Close 1001 to
  // the upstream, unless the close handshake already ended the relay. A tunnel's relay
  // takes what is buffered before it acts on the EOF (proxy/relay_raw.cc), so it need not
  // be reading: waiting for that would lose the EOF when the relay is paused by a full
  // target and nothing more arrives to wake this stream.
  if (!client_ended_ || eof_sent_ || exchange_done_ || state_ != State::Relaying || !pair_) return;
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
  if (s->data_deferred_) s->session_.mark_dirty(s->id_);
  s->watch_send_stall();
}

evbuffer* H2Stream::outgoing() const {
  if (state_ == State::Answering) return body_.get();
  return pair_ ? bufferevent_get_input(pair_.get()) : nullptr;
}

ssize_t H2Stream::read_data(nghttp2_session* /*ng*/, int32_t /*stream_id*/, uint8_t* /*buf*/,
                            size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                            void* /*user_data*/) {
  auto* s = static_cast<H2Stream*>(source->ptr);
  evbuffer* out = s->outgoing();
  const std::size_t avail = out != nullptr ? evbuffer_get_length(out) : 0;
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (avail == 0) {
    const bool answer_complete = s->state_ == State::Answering && s->body_complete_;
    // The relay finished after its close handshake (or the tunnel's orderly end).
    const bool relay_complete =
        s->state_ == State::Relaying && s->exchange_done_ && !s->upstream_failed_;
    if (answer_complete || relay_complete) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      s->state_ = State::Done;
      return 0;
    }
    if (s->state_ == State::Relaying && s->exchange_done_) {
      // The upstream failed: RST_STREAM (CANCEL; CONNECT_ERROR for a tunnel).
      s->reset_pending_ = true;
      s->session_.mark_dirty(s->id_);
    }
    s->data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(std::min(avail, length));
}

int H2Stream::send_data(const nghttp2_frame* /*frame*/, const uint8_t* framehd,
                        std::size_t length) {
  // A full socket buffer: nghttp2 keeps the frame and the session's write callback
  // sends again (the bytes wait meanwhile).
  if (session_.client_output_full()) return NGHTTP2_ERR_WOULDBLOCK;
  evbuffer* out = session_.client_output();
  // RFC 9113 6.1: the 9-byte frame header, then the payload moved without copying its
  // chains (we never add padding, so there is no pad length byte).
  evbuffer_add(out, framehd, 9);
  if (length > 0) {
    evbuffer_remove_buffer(outgoing(), out, length);
    waiting_since_ = std::chrono::steady_clock::now();  // not stalled
  }
  return 0;
}

void H2Stream::process() {
  nghttp2_session* ng = session_.ng();
  if (to_consume_ > 0) {
    nghttp2_session_consume(ng, id_, to_consume_);
    unconsumed_ -= to_consume_;
    to_consume_ = 0;
  }
  if (state_ == State::Exchanging && exchange_done_) {
    // The exchange ended without answering (it cannot, but a stream must not hang).
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    state_ = State::Done;
  }
  if (reset_pending_) {
    reset_pending_ = false;
    // The upstream's TCP connection ended without a Close (its 1011 went out as DATA);
    // a tunnel's target connection failed: RFC 9113 8.5 says CONNECT_ERROR.
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id_,
                              tunnel_ ? NGHTTP2_CONNECT_ERROR : NGHTTP2_CANCEL);
    state_ = State::Done;
    return;
  }
  if (data_deferred_ && (state_ == State::Relaying || state_ == State::Answering)) {
    data_deferred_ = false;
    nghttp2_session_resume_data(ng, id_);
  }
  maybe_send_eof();
}

void H2Stream::on_closed(uint32_t error_code) {
  if (tunnel_ && error_code != NGHTTP2_NO_ERROR && pair_ && !eof_sent_ && !exchange_done_) {
    // RFC 9113 8.5: a reset tunnel stream resets the target's TCP connection. The relay
    // side hears an error instead of an EOF (deferred: the relay must not run inside
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
  stall_timer_.cancel();
  if (Exchange* e = std::exchange(exchange_, nullptr)) {
    // Before a relay: the exchange ends here (its access-log line says so). A relay
    // carries on: it hears the EOF below and closes the upstream side itself.
    e->detach_downstream();
  }
  unlink_pair();
}

void H2Stream::unlink_pair() {
  if (relay_input_cb_ != nullptr) evbuffer_remove_cb_entry(relay_input_, relay_input_cb_);
  relay_input_cb_ = nullptr;
  relay_input_ = nullptr;
  if (pair_) {
    // Reset or finished: bytes the relay has not taken are dropped, and the relay side
    // sees EOF (a relaying WebSocket sends Close 1001 to the upstream; RFC 8441 does the
    // same for a stream reset).
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

}  // namespace wsgate::gateway
