#include "gateway/h2/h2_stream.h"

#include <event2/buffer.h>

#include <algorithm>
#include <vector>

#include "gateway/exchange/exchange.h"
#include "gateway/h2/h2_session.h"
#include "gateway/h2/h2_stream_endpoint.h"
#include "gateway/worker.h"

namespace wsgate::gateway {
namespace {

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
  unlink_endpoint(/*failed=*/true);
  if (Exchange* e = std::exchange(exchange_, nullptr)) e->detach_downstream();
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

void H2Stream::on_request_headers(bool end_stream) {
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
  if (request.ok() && !request.value.is_websocket() && request.value.method != "CONNECT") {
    // An ordinary request, forwarded (gateway/exchange/http_exchange.h). RFC 9113 8.1:
    // it has content unless its HEADERS ended the stream.
    forwarding_ = true;
    request.value.has_body = !end_stream;
    const http::Field* expect = request.value.find("expect");
    expect_continue_ = expect != nullptr && http::iequals(expect->value, "100-continue");
  }
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
                          {"content-length", std::to_string(evbuffer_get_length(body_.get()))},
                          {"x-content-type-options", "nosniff"},
                          {"cache-control", "no-store"}};
  for (const auto& [name, value] : refusal.fields) {
    // RFC 9113 8.2.2: no connection-specific fields (a 426's Upgrade/Connection).
    std::string n = lowercase(name);
    if (n == "connection" || n == "upgrade") continue;
    fields.push_back({std::move(n), value});
  }
  submit(fields, true);
}

ClientChannel H2Stream::open_relay(h2map::Fields response) {
  state_ = State::Relaying;
  auto endpoint = std::make_unique<H2StreamEndpoint>(session_.worker().base(), *this);
  endpoint_ = endpoint.get();
  if (early_data_) {
    endpoint_->peer_data(early_data_.get());
    early_data_.reset();
  }
  if (client_ended_) endpoint_->peer_end();
  submit(response, true);
  return ClientChannel{std::move(endpoint)};
}

ClientChannel H2Stream::accept_websocket(const http1::ResponseHead& upgrade) {
  // RFC 8441 5: 200 with the upstream's end-to-end fields (subprotocol, extensions).
  return open_relay(h2map::h1_response_to_h2(upgrade).fields);
}

ClientChannel H2Stream::accept_tunnel() {
  // RFC 9113 8.5: the 2xx opens the tunnel; DATA frames carry its bytes both ways.
  tunnel_ = true;
  return open_relay({{":status", "200"}});
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
  if (response_begun_ && !end.response_complete && state_ == State::Answering) {
    // A forwarded response was cut (the upstream failed, or stalled): the reset tells the
    // client it is incomplete (RFC 9113 8.1: a response ends only with END_STREAM).
    reset_pending_ = true;
    reset_code_ = NGHTTP2_INTERNAL_ERROR;
  }
  if (request_body_) {
    // Content nobody will read: its credit goes back.
    credit_taken(evbuffer_get_length(request_body_.get()));
    request_body_.reset();
  }
  // The upstream's connection failed: the stream is reset once what the relay wrote
  // (a WebSocket's Close 1011) is out; otherwise it ends with END_STREAM.
  if (upstream_failed_ && state_ == State::Relaying) reset_output(/*abandon=*/false);
  session_.mark_dirty(id_);
}

void H2Stream::endpoint_gone(evbuffer* unsent) {
  endpoint_ = nullptr;
  if (evbuffer_get_length(unsent) == 0) return;
  if (!orphan_out_) orphan_out_.reset(evbuffer_new());
  evbuffer_add_buffer(orphan_out_.get(), unsent);  // moves the chains, no copy
}

void H2Stream::credit_taken(std::size_t n) {
  n = std::min(n, unconsumed_ - to_consume_);
  if (n == 0) return;
  to_consume_ += n;
  session_.mark_dirty(id_);
}

void H2Stream::output_ready() {
  session_.mark_dirty(id_);  // process() resumes the deferred data provider
  watch_send_stall();
}

void H2Stream::reset_output(bool abandon) {
  if (state_ == State::Done) return;
  reset_pending_ = true;
  // RFC 9113 8.5: a tunnel whose target connection failed is reset with CONNECT_ERROR.
  reset_code_ = abandon ? NGHTTP2_CANCEL : tunnel_ ? NGHTTP2_CONNECT_ERROR : NGHTTP2_CANCEL;
  session_.mark_dirty(id_);
}

void H2Stream::on_data(const uint8_t* data, std::size_t len) {
  if (forwarding_) {
    // Request content, while an exchange is there to read it (and the answer is not our
    // own refusal); its credit returns as the exchange takes it (read_request_body).
    const bool wanted =
        exchange_ != nullptr && !exchange_done_ && (state_ == State::Exchanging || response_begun_);
    if (!wanted) {
      nghttp2_session_consume(session_.ng(), id_, len);
      return;
    }
    if (!request_body_) request_body_.reset(evbuffer_new());
    unconsumed_ += len;
    evbuffer_add(request_body_.get(), data, len);
    body_ready_pending_ = true;
    session_.mark_dirty(id_);
    return;
  }
  if (state_ == State::Exchanging && !exchange_done_) {
    // Sent before our answer: kept for the relay (its credit waits with it).
    if (!early_data_) early_data_.reset(evbuffer_new());
    unconsumed_ += len;
    evbuffer_add(early_data_.get(), data, len);
    return;
  }
  if (state_ != State::Relaying || endpoint_ == nullptr || exchange_done_) {
    // Nobody will read these bytes: the credit goes back at once.
    nghttp2_session_consume(session_.ng(), id_, len);
    return;
  }
  unconsumed_ += len;
  endpoint_->peer_data(data, len);
}

void H2Stream::on_end_stream() {
  client_ended_ = true;
  // The relay hears it after the bytes before it (it takes them even while paused).
  if (endpoint_ != nullptr) endpoint_->peer_end();
  if (forwarding_) body_ready_pending_ = true;  // the exchange learns the content is whole
  session_.mark_dirty(id_);
}

evbuffer* H2Stream::outgoing() const {
  if (state_ == State::Answering) return body_.get();
  if (endpoint_ != nullptr) return endpoint_->output();
  return orphan_out_.get();
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
    // The relay half-closed toward the client (a tunnel's EOF) or finished after its
    // close handshake: END_STREAM. A reset, when one is due, goes out from process().
    const bool relay_complete = s->state_ == State::Relaying && !s->reset_pending_ &&
                                ((s->endpoint_ != nullptr && s->endpoint_->write_shut()) ||
                                 (s->exchange_done_ && !s->upstream_failed_));
    if (answer_complete || relay_complete) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      s->state_ = State::Done;
      return 0;
    }
    s->data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  const std::size_t n = std::min(avail, length);
  // The rest of a complete answer: END_STREAM goes on this DATA frame (RFC 9113 6.1), not
  // on an empty one after it. The stream is done once send_data() has sent it.
  if (s->state_ == State::Answering && s->body_complete_ && n == avail) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    s->last_data_framed_ = true;
  }
  return static_cast<ssize_t>(n);
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
    // A forwarded response below half its watermark: the exchange reads on upstream.
    if (response_begun_ && exchange_ != nullptr &&
        evbuffer_get_length(body_.get()) < response_high_ / 2) {
      drained_pending_ = true;
      session_.mark_dirty(id_);
    }
  }
  if (state_ == State::Relaying && endpoint_ != nullptr) endpoint_->moved_out();
  if (state_ == State::Answering && last_data_framed_) state_ = State::Done;
  return 0;
}

void H2Stream::process() {
  nghttp2_session* ng = session_.ng();
  if (to_consume_ > 0) {
    nghttp2_session_consume(ng, id_, to_consume_);
    unconsumed_ -= to_consume_;
    to_consume_ = 0;
  }
  // The HTTP exchange hears of new content and of a drained response from here, never
  // from inside nghttp2's callbacks; either may end it.
  if (std::exchange(body_ready_pending_, false) && exchange_ != nullptr)
    exchange_->on_request_body_ready();
  if (std::exchange(drained_pending_, false) && exchange_ != nullptr)
    exchange_->on_client_drained();
  if (state_ == State::Exchanging && exchange_done_) {
    // The exchange ended without answering (it cannot, but a stream must not hang).
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    state_ = State::Done;
  }
  if (reset_pending_) {
    reset_pending_ = false;
    // The relay reset or abandoned the client side, or the upstream's connection ended
    // without a Close (its 1011 went out as DATA first when there was room).
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id_, reset_code_);
    state_ = State::Done;
    return;
  }
  if (data_deferred_ && (state_ == State::Relaying || state_ == State::Answering)) {
    data_deferred_ = false;
    nghttp2_session_resume_data(ng, id_);
  }
}

void H2Stream::on_closed(uint32_t error_code) {
  // DATA received but never taken by the relay: the connection window gets it back.
  session_.return_connection_credit(unconsumed_);
  unconsumed_ = 0;
  to_consume_ = 0;
  const bool clean = error_code == NGHTTP2_NO_ERROR && client_ended_;
  state_ = State::Done;
  stall_timer_.cancel();
  // A relay carries on without the stream: a reset (RFC 9113 8.5 for a tunnel: the
  // target is reset too) or a connection that went away is an error to it; a stream
  // that ended both ways already told it END_STREAM.
  unlink_endpoint(/*failed=*/!clean);
  if (Exchange* e = std::exchange(exchange_, nullptr)) {
    // Before a relay: the exchange ends here (its access-log line says so).
    e->detach_downstream();
  }
}

void H2Stream::unlink_endpoint(bool failed) {
  if (endpoint_ == nullptr) return;
  if (failed) endpoint_->peer_failed();
  endpoint_->stream_gone();
  endpoint_ = nullptr;
}

// --- HttpDownstream: a forwarded request over HTTP/2 ---

HttpDownstream::BodyRead H2Stream::read_request_body(evbuffer* to, std::size_t max) {
  BodyRead r;
  if (request_body_) {
    r.moved = std::min(max, evbuffer_get_length(request_body_.get()));
    evbuffer_remove_buffer(request_body_.get(), to, r.moved);
    credit_taken(r.moved);  // the client may send that much more (habit 6)
  }
  // RFC 9113 8.1: the content ends with END_STREAM (nghttp2 has checked it against a
  // content-length, RFC 9113 8.1.1, and reset the stream on a mismatch).
  if (client_ended_ && (!request_body_ || evbuffer_get_length(request_body_.get()) == 0))
    r.state = BodyState::Done;
  return r;
}

void H2Stream::continue_request_body() {
  if (!std::exchange(expect_continue_, false) || client_ended_) return;
  // RFC 9110 10.1.1, RFC 9113 8.1: an interim 100 as a HEADERS frame of its own.
  static const h2map::Fields kContinue = {{":status", "100"}};
  const std::vector<nghttp2_nv> nv = to_nv(kContinue);
  nghttp2_submit_headers(session_.ng(), NGHTTP2_FLAG_NONE, id_, nullptr, nv.data(), nv.size(),
                         nullptr);
  session_.mark_dirty(id_);
}

void H2Stream::begin_response(const http::ResponseHead& head) {
  response_begun_ = true;
  state_ = State::Answering;
  body_.reset(evbuffer_new());
  body_complete_ = head.body == http::ResponseHead::Body::None;
  submit(h2map::forwarded_response_to_h2(head), !body_complete_);
}

void H2Stream::response_body(evbuffer* from, std::size_t n) {
  evbuffer_remove_buffer(from, body_.get(), n);  // moves the chains, no copy
  if (data_deferred_) session_.mark_dirty(id_);
  watch_send_stall();
}

void H2Stream::end_response() {
  body_complete_ = true;
  session_.mark_dirty(id_);
}

std::size_t H2Stream::response_buffered() const {
  return body_ ? evbuffer_get_length(body_.get()) : 0;
}

}  // namespace wsgate::gateway
