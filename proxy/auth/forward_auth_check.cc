// One forward-auth subrequest on the worker's loop (proxy/auth/forward_auth.h): the
// connector (proxy/upstream/upstream_connector.h) gets the answer's head, this file reads
// its body, classifies it and gives a clean connection back to the idle pool.
#include <event2/buffer.h>

#include <algorithm>
#include <utility>

#include "conf/address.h"
#include "proxy/auth/forward_auth.h"
#include "proxy/body_front.h"

namespace wsgate::proxy {

ForwardAuthCheck::ForwardAuthCheck(Context context, const conf::ForwardAuth& forward,
                                   std::string request, Done done)
    : ctx_(std::move(context)),
      forward_(forward),
      request_(std::move(request)),
      done_(std::move(done)),
      timer_(ctx_.base, [this] { on_timer(); }) {}

ForwardAuthCheck::~ForwardAuthCheck() {
  cancel();
}

void ForwardAuthCheck::cancel() {
  state_ = State::Done;
  pending_.reset();
  timer_.cancel();
  if (connector_) {
    connector_->cancel();
    connector_.reset();  // never from inside its callback: that path retires it first
  }
  release_connection();
  done_ = nullptr;
}

void ForwardAuthCheck::start() {
  started_ = std::chrono::steady_clock::now();
  state_ = State::Connecting;
  // One deadline for everything: picking, connecting, the answer's head and its body.
  timer_.arm_ms(forward_.timeout.count());
  if (ctx_.upstream == nullptr || ctx_.upstream->servers.empty()) {
    starting_ = true;
    fail("auth service upstream has no servers");
    starting_ = false;
    timer_.activate();
    return;
  }
  const UpstreamTimeouts timeouts{forward_.timeout, forward_.timeout};
  connector_ = std::make_unique<UpstreamConnector>(
      ctx_.base, ctx_.dns, ctx_.tls, std::move(ctx_.servers), std::move(request_), timeouts,
      [this](UpstreamResult&& r) { on_answer(std::move(r)); });
  // A GET without content may be sent twice (RFC 9110 9.2.2): it may go on a pooled
  // connection, and again on a new one if the server closed that one meanwhile.
  if (ctx_.idle != nullptr && ctx_.upstream->keepalive > 0) connector_->reuse_from(ctx_.idle);
  // The connector can fail before start() returns (no server available): the verdict is
  // then handed over on the next loop iteration, never from inside start().
  starting_ = true;
  connector_->start();
  starting_ = false;
  if (pending_) timer_.activate();
}

void ForwardAuthCheck::on_answer(UpstreamResult&& result) {
  // Its callback is on the stack: the connector is destroyed later by its owner.
  ctx_.retire(std::move(connector_));
  if (state_ != State::Connecting) return;
  if (!result.answered) {
    // The connector's own deadlines are the check's (one timeout for everything): its
    // 504 is the check timing out, said the same way whichever timer fired first.
    fail(result.refusal.status == 504 ? timed_out() : "auth service: " + result.refusal.reason);
    return;
  }
  server_ = conf::to_string(result.server);
  lease_ = std::move(result.lease);
  bev_ = std::move(result.connection);
  head_ = std::move(result.response);
  const http1::BodyFraming framing = http1::response_body_framing(head_, "GET");
  if (!framing.ok()) {
    fail("auth service " + server_ + ": " + framing.error_reason);
    return;
  }
  if (framing.kind == http1::BodyKind::Length && framing.length > kMaxAnswerBody) {
    fail("auth service answer over 64 KiB");
    return;
  }
  // RFC 9112 9.3: the connection may carry the next subrequest unless either side said
  // close or the answer ends with the connection.
  reusable_ = ctx_.idle != nullptr && ctx_.upstream->keepalive > 0 && head_.version_minor == 1 &&
              framing.kind != http1::BodyKind::UntilClose;
  for (const http1::Header& h : head_.headers)
    if (http1::iequals(h.name, "connection") && http1::header_has_token(h.value, "close"))
      reusable_ = false;
  decoder_ = http1::BodyDecoder(framing);
  state_ = State::ReadingBody;
  bufferevent_setcb(bev_.get(), &ForwardAuthCheck::on_read, nullptr, &ForwardAuthCheck::on_event,
                    this);
  bev_.set_reading(true);
  read_body();
}

void ForwardAuthCheck::on_read(bufferevent* /*bev*/, void* self) {
  static_cast<ForwardAuthCheck*>(self)->read_body();
}

void ForwardAuthCheck::on_event(bufferevent* /*bev*/, short what, void* self) {
  auto* c = static_cast<ForwardAuthCheck*>(self);
  if ((what & BEV_EVENT_EOF) != 0) {
    c->eof_ = true;
    c->read_body();
  } else if ((what & BEV_EVENT_ERROR) != 0) {
    c->fail("auth service " + c->server_ + ": connection failed during its answer");
  }
}

void ForwardAuthCheck::read_body() {
  if (state_ != State::ReadingBody) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  for (;;) {
    const std::size_t available = evbuffer_get_length(in);
    const http1::BodyStep step =
        decoder_.next(proxy::body_front(in, decoder_, available), available);
    switch (step.action) {
      case http1::BodyStep::Action::Data: {
        const std::size_t k = std::min(step.n, available);
        if (body_.size() + k > kMaxAnswerBody) {
          fail("auth service answer over 64 KiB");
          return;
        }
        const std::size_t at = body_.size();
        body_.resize(at + k);
        evbuffer_remove(in, body_.data() + at, k);
        decoder_.took(k);
        continue;
      }
      case http1::BodyStep::Action::Skip:
        evbuffer_drain(in, step.n);
        continue;
      case http1::BodyStep::Action::Done:
        body_complete();
        return;
      case http1::BodyStep::Action::Error:
        fail("auth service " + server_ + " sent invalid content: " + std::string(step.reason));
        return;
      case http1::BodyStep::Action::NeedMore:
        break;
    }
    break;
  }
  if (!eof_) return;  // more to come
  if (decoder_.complete_at_eof()) {
    body_complete();
  } else {
    fail("auth service " + server_ + " closed before the end of its answer");
  }
}

void ForwardAuthCheck::body_complete() {
  ForwardAuthVerdict verdict = classify_forward_auth_answer(forward_, head_, std::move(body_));
  keep_connection();
  finish(std::move(verdict));
}

void ForwardAuthCheck::keep_connection() {
  // Bytes beyond the answer would belong to no request: such a connection is closed.
  if (!reusable_ || eof_ || !bev_ || !lease_ ||
      evbuffer_get_length(bufferevent_get_input(bev_.get())) != 0 ||
      evbuffer_get_length(bufferevent_get_output(bev_.get())) != 0)
    return;
  // Reading stays enabled: the pool only changes the callbacks (no epoll_ctl).
  bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
  ctx_.idle->put(ctx_.upstream->name, lease_.server_ptr(), std::move(bev_),
                 ctx_.upstream->keepalive, ctx_.upstream->keepalive_timeout);
}

void ForwardAuthCheck::on_timer() {
  if (pending_) {
    ForwardAuthVerdict verdict = std::move(*pending_);
    pending_.reset();
    deliver(std::move(verdict));
    return;
  }
  if (state_ == State::Connecting || state_ == State::ReadingBody) fail(timed_out());
}

std::string ForwardAuthCheck::timed_out() const {
  return "auth service timed out after " + std::to_string(forward_.timeout.count()) + "ms";
}

void ForwardAuthCheck::fail(std::string reason) {
  ForwardAuthVerdict verdict;
  verdict.kind = ForwardAuthVerdict::Kind::Failed;
  verdict.reason = std::move(reason);
  finish(std::move(verdict));
}

void ForwardAuthCheck::release_connection() {
  if (bev_) {
    bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
    bev_.reset();
  }
  lease_.reset();
}

void ForwardAuthCheck::finish(ForwardAuthVerdict verdict) {
  if (state_ == State::Done) return;
  state_ = State::Done;
  timer_.cancel();
  if (connector_) {  // the deadline passed while it worked: stopped, destroyed later
    connector_->cancel();
    ctx_.retire(std::move(connector_));
  }
  release_connection();
  if (ctx_.metrics != nullptr)
    ctx_.metrics->auth_subrequest(
        ctx_.route,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  if (starting_) {
    pending_ = std::move(verdict);  // start() activates the timer to deliver it
    return;
  }
  deliver(std::move(verdict));
}

void ForwardAuthCheck::deliver(ForwardAuthVerdict verdict) {
  // Last: `done` may destroy this check; `done` and `verdict` live on this stack frame.
  Done done = std::exchange(done_, nullptr);
  if (done) done(std::move(verdict));
}

}  // namespace wsgate::proxy
