#include "gateway/exchange/http_exchange.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "conf/address.h"
#include "gateway/exchange/websocket_handshake.h"
#include "gateway/worker.h"
#include "proxy/body_front.h"
#include "proxy/codec/http_forward.h"
#include "proxy/relay/socket_io.h"
#include "proxy/upstream/affinity.h"

namespace wsgate::gateway {
namespace {

// RFC 9110 9.2.2: methods whose repetition has the effect of one request.
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

// Chunk content read with a chunk-size line that may go in front of the rest of the
// chunk when that is spliced (gateway/h1 reads the lines 64 bytes at a time). With the
// size line it stays under a page: it always fits in the pipe at once.
constexpr std::size_t kCarriedMax = 2048;

http::Refusal over_max_body_size() {
  return {413, "request content over the route's max_body_size", {}};
}

std::string host_port_text(const conf::HostPort& s) {
  return s.host.empty() ? "-" : conf::to_string(s);
}

}  // namespace

HttpExchange::HttpExchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request)
    : Exchange(std::move(ctx), downstream, std::move(request)),
      idle_(worker_.idle_timeouts(), [this] { on_idle(); }) {}

HttpExchange::~HttpExchange() {
  splice_.reset();  // before the sockets it watches close
  if (connector_) connector_->cancel();
}

void HttpExchange::stop_upstream_work() {
  splice_.reset();
  splicing_ = false;
  if (connector_) connector_->cancel();
  upstream_out_ = nullptr;
  if (upstream_) {
    bufferevent_setcb(upstream_.get(), nullptr, nullptr, nullptr, nullptr);
    upstream_.reset();
  }
  idle_.cancel();
}

void HttpExchange::decide() {
  // As for WebSockets: routed on the normalised path, which is also what goes upstream.
  if (!choose_route()) return;
  if (route_->websocket_only) {
    // The route serves upgrades only: the answer every non-upgrade got before forwarding
    // existed (405 with Allow, or 426 with Upgrade).
    std::optional<http::Refusal> refusal =
        check_websocket_request(*request_, {route_->allowed_origins, route_->require_origin});
    refuse(refusal ? std::move(*refusal)
                   : http::Refusal{426, "this endpoint speaks WebSocket only", {}});
    return;
  }
  http_request_ = true;
  cap_ = route_->buffer_size;
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  if (upstream == nullptr || upstream->servers.empty()) {
    refuse({502, "route has no upstream servers", {}});
    return;
  }
  const http::Field* cl = request_->find("content-length");
  if (cl != nullptr && std::strtoull(cl->value.c_str(), nullptr, 10) > route_->max_body_size) {
    refuse(over_max_body_size());
    return;
  }
  // RFC 9110 10.1.1: the only expectation defined, and met (the gateway sends the 100
  // itself), is 100-continue; a server that cannot meet another one answers 417.
  for (const http::Field& f : request_->fields) {
    if (http::iequals(f.name, "expect") && !http::iequals(f.value, "100-continue")) {
      refuse({417, "only the 100-continue expectation is supported", {}});
      return;
    }
  }
  authorize([this] { forward(); });
}

void HttpExchange::forward() {
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  chunked_upstream_ = request_->has_body && request_->find("content-length") == nullptr;
  upstream_plain_ = tls_ == nullptr || tls_->upstream(upstream->name) == nullptr;
  // Content that came with the head is read (and its framing checked) now, before any
  // upstream sees the request: a malformed body is refused without reaching it.
  pump_request();
  if (state_ != State::Deciding) return;

  const DownstreamFacts& f = facts_;
  std::string head = proxy::build_forward_request(
      *request_, {f.forwarded_for_hop(), f.tls ? "https" : "http", f.client_subject},
      chunked_upstream_, upstream->keepalive > 0, route_->via);
  state_ = State::ConnectingUpstream;
  connector_ = std::make_unique<proxy::UpstreamConnector>(
      worker_.base(), worker_.dns(), tls_ ? tls_->upstream(upstream->name) : nullptr,
      worker_.balancers_for(*config_).select(*upstream, f.client_ip, *request_), std::move(head),
      proxy::UpstreamTimeouts{route_->connect_timeout, route_->upstream_handshake_timeout},
      [this](proxy::UpstreamResult&& r) { on_upstream(std::move(r)); });
  connector_->time_with(&worker_.idle_timeouts());
  connector_->stream_request(
      {[this](bufferevent* bev) { on_connected(bev); }, [this] { pump_request(); }});
  if (upstream->send_proxy_protocol != conf::Upstream::ProxyProtocol::Off)
    connector_->proxy_header_for(client_endpoint());
  // Only a request that may be sent twice goes on a pooled connection: the server may
  // close an idle one just as the request leaves (RFC 9112 9.3.1), and only such a
  // request is then sent again on a new one.
  if (upstream->keepalive > 0 && idempotent(request_->method))
    connector_->reuse_from(&worker_.idle_upstreams());
  idle_.start(route_->idle_timeout.count());
  connector_->start();
}

void HttpExchange::on_connected(bufferevent* upstream) {
  // Each attempt starts with the head written; whatever content was read waits in
  // pending_ (it never went anywhere if an earlier attempt failed before it was sent).
  upstream_out_ = upstream;
  bufferevent_setwatermark(upstream, EV_WRITE, cap_ / 2, 0);
  // Content moves in writes of up to the watermark, not libevent's 16 KiB default.
  bufferevent_set_max_single_write(upstream, static_cast<ev_ssize_t>(cap_));
  // The upstream got the request: sending it again is safe only for idempotent methods.
  if (!idempotent(request_->method)) connector_->no_retry();
  if (HttpDownstream* c = client(); c != nullptr && !request_read_) c->continue_request_body();
  pump_request();
}

void HttpExchange::on_request_body_ready() {
  pump_request();
}

void HttpExchange::pump_request() {
  HttpDownstream* c = client();
  // Once answered (a refusal, or the response is over) the content has nowhere to go.
  if (c == nullptr || request_sent_ || state_ == State::Answered || state_ == State::Done) return;
  if (splicing_) return;  // the kernel moves the rest (or the current chunk's)
  // A request without content (most) needs no buffer for it.
  if (!request_->has_body) request_read_ = true;
  bool progress = true;
  while (progress && !request_sent_) {
    progress = false;
    // Read the client's content into pending_, up to the watermark.
    while (!request_read_ && pending_length() < cap_) {
      if (!pending_) pending_.reset(evbuffer_new());
      const HttpDownstream::BodyRead r =
          c->read_request_body(pending_.get(), cap_ - pending_length());
      stats_.client_to_upstream.bytes += r.moved;
      if (r.state == HttpDownstream::BodyState::Failed) {
        request_failed(r.error);
        return;
      }
      if (stats_.client_to_upstream.bytes > route_->max_body_size) {
        request_failed(over_max_body_size());
        return;
      }
      if (r.state == HttpDownstream::BodyState::Done) request_read_ = true;
      if (r.moved == 0) break;
      progress = true;
    }
    if (upstream_out_ == nullptr) return;  // not connected yet: pending_ waits
    evbuffer* out = bufferevent_get_output(upstream_out_);
    const std::size_t n = pending_length();
    // A few bytes of a chunk read with its size line go in front of the rest of the chunk
    // when that is spliced (in the same pipe), not in a small chunk of their own.
    if (chunked_upstream_ && !request_read_ && n > 0 && n <= kCarriedMax &&
        evbuffer_get_length(out) == 0 && try_splice())
      return;
    if (n > 0 && evbuffer_get_length(out) < cap_) {
      // RFC 9112 7.1: chunk-size CRLF chunk-data CRLF; the data moves without a copy.
      if (chunked_upstream_) {
        char size[24];
        const int len = std::snprintf(size, sizeof(size), "%zx\r\n", n);
        evbuffer_prepend(pending_.get(), size, static_cast<std::size_t>(len));
        evbuffer_add(pending_.get(), "\r\n", 2);
      }
      // Written now on a plain socket (one writev instead of a trip through the write
      // event); what does not fit waits in the output, whose write event sends it.
      proxy::send_now(upstream_out_, pending_.get(), upstream_plain_);
      if (evbuffer_get_length(out) > 0) bufferevent_enable(upstream_out_, EV_WRITE);
      if (!body_went_out_ && connector_) connector_->no_retry();
      body_went_out_ = true;
      progress = true;
      idle_.progress();
    }
    if (!request_read_ && pending_length() == 0 && evbuffer_get_length(out) == 0 && try_splice())
      return;
    if (request_read_ && pending_length() == 0) {
      if (chunked_upstream_) {  // last-chunk, no trailers
        proxy::send_now(upstream_out_, "0\r\n\r\n", 5, upstream_plain_);
        if (evbuffer_get_length(out) > 0) bufferevent_enable(upstream_out_, EV_WRITE);
      }
      request_sent_ = true;
      if (connector_) connector_->request_sent();
    }
  }
}

bool HttpExchange::try_splice() {
  // Below this much, copying costs less than setting up the pipe. A chunk of a chunked
  // body needs less: its pipe is kept from one chunk to the next.
  constexpr uint64_t kMinSplice = 256 * 1024;
  constexpr uint64_t kMinChunkSplice = 16 * 1024;
  HttpDownstream* c = client();
  const evutil_socket_t to = upstream_out_ != nullptr ? proxy::socket_of(upstream_out_) : -1;
  if (!upstream_plain_ || c == nullptr || to < 0) return false;
  // A chunked request (no Content-Length: chunked_upstream_) offers the rest of its
  // current chunk's data; a Content-Length one the rest of its content.
  const HttpDownstream::BodySocket body =
      c->take_body_socket(chunked_upstream_ ? kMinChunkSplice : kMinSplice);
  if (body.fd < 0) return false;
  if (stats_.client_to_upstream.bytes + body.left > route_->max_body_size) {
    request_failed(over_max_body_size());
    return true;
  }
  // RFC 9112 7.1: the chunk goes upstream as chunk-size CRLF, the data, CRLF. The size
  // line, the content already read (pending_, counted when it was read) and the final
  // CRLF go through the same pipe as the spliced data, in order; `moved` counts them
  // too, and they are taken off again once the chunk is through.
  std::string prefix;
  std::size_t not_spliced = 0;
  if (chunked_upstream_) {
    const std::size_t carried = pending_length();
    char size_line[24];
    const int len = std::snprintf(size_line, sizeof(size_line), "%llx\r\n",
                                  static_cast<unsigned long long>(body.left + carried));
    prefix.resize(static_cast<std::size_t>(len) + carried);
    std::memcpy(prefix.data(), size_line, static_cast<std::size_t>(len));
    if (carried > 0) evbuffer_remove(pending_.get(), prefix.data() + len, carried);
    not_spliced = prefix.size() + 2;
  }
  proxy::SplicePump::Events events;
  events.moved = [this](std::size_t n) {
    stats_.client_to_upstream.bytes += n;
    worker_.metrics().spliced_bytes().client_to_upstream += n;
    if (!body_went_out_ && connector_) connector_->no_retry();
    body_went_out_ = true;
    idle_.progress();
  };
  if (chunked_upstream_) {
    events.done = [this, not_spliced] {
      // The chunk is through; its CRLF and the next chunk-size line are read as usual.
      splicing_ = false;
      stats_.client_to_upstream.bytes -= not_spliced;
      worker_.metrics().spliced_bytes().client_to_upstream -= not_spliced;
      if (HttpDownstream* d = client()) d->body_socket_done();
      pump_request();
    };
  } else {
    events.done = [this] {
      splice_.reset();
      splicing_ = false;
      request_read_ = true;
      request_sent_ = true;
      if (connector_) connector_->request_sent();
      if (HttpDownstream* d = client()) d->body_socket_done();
    };
  }
  events.failed = [this](bool client_side, int error) {
    splice_.reset();
    splicing_ = false;
    std::string reason =
        client_side
            ? (error == 0 ? std::string("client closed before the end of the request content")
                          : std::string("reading the request content: ") + std::strerror(error))
            : std::string("sending the request content upstream: ") +
                  (error == 0 ? "connection closed" : std::strerror(error));
    if (client_side || state_ == State::Forwarding) {
      abort(std::move(reason));
    } else {
      refuse({502, std::move(reason), {}});
    }
  };
  if (splice_) {
    splice_->restart(body.left, std::move(events));  // the pipe of the previous chunk
  } else {
    splice_ = proxy::SplicePump::create(worker_.base(), body.fd, to, body.left, std::move(events));
  }
  if (!splice_) {
    // The content was handed over already: without a pipe it cannot move.
    abort("no pipe for the request content (out of file descriptors)");
    return true;
  }
  if (chunked_upstream_) splice_->frame(prefix, "\r\n");
  splicing_ = true;
  splice_->start();
  return true;
}

void HttpExchange::request_failed(http::Refusal refusal) {
  if (state_ == State::Forwarding) {
    abort("client request content: " + refusal.reason);
    return;
  }
  refuse(std::move(refusal));
}

void HttpExchange::on_upstream(proxy::UpstreamResult&& result) {
  upstream_addr_ = host_port_text(result.server);
  upstream_lease_ = std::move(result.lease);
  worker_.retire(std::move(connector_));  // its callback is on the stack
  upstream_out_ = nullptr;
  if (!result.answered) {
    refuse(std::move(result.refusal));
    return;
  }
  if (result.response.status == 101) {
    // RFC 9110 15.2.2: 101 answers an Upgrade, which a forwarded request never carries.
    refuse(
        {502, "upstream " + upstream_addr_ + " switched protocols without an Upgrade request", {}});
    return;
  }
  const http1::BodyFraming framing =
      http1::response_body_framing(result.response, request_->method);
  if (!framing.ok()) {
    refuse({502, "upstream " + upstream_addr_ + ": " + framing.error_reason, {}});
    return;
  }
  // RFC 9112 9.3: the connection may carry another request unless either side said
  // close, or the response ends with the connection.
  upstream_reusable_ =
      result.response.version_minor == 1 && framing.kind != http1::BodyKind::UntilClose;
  for (const http1::Header& h : result.response.headers)
    if (http1::iequals(h.name, "connection") && http1::header_has_token(h.value, "close"))
      upstream_reusable_ = false;
  upstream_ = std::move(result.connection);
  upstream_out_ = upstream_.get();
  bufferevent_setcb(upstream_.get(), &HttpExchange::on_upstream_read,
                    &HttpExchange::on_upstream_write, &HttpExchange::on_upstream_event, this);
  // No read watermark: pump_response() pauses reading while the client's side holds cap_.
  bufferevent_set_max_single_read(upstream_.get(), static_cast<ev_ssize_t>(cap_));
  bufferevent_setwatermark(upstream_.get(), EV_WRITE, cap_ / 2, 0);
  // The connector left reading on (UpstreamConnector::on_response_bytes).
  upstream_.set_reading(true);
  // The write event only while request content waits (it is added with the content).
  if (evbuffer_get_length(bufferevent_get_output(upstream_.get())) > 0)
    bufferevent_enable(upstream_.get(), EV_WRITE);
  response_body_ = http1::BodyDecoder(framing);
  answered(result.response.status);
  state_ = State::Forwarding;
  http::ResponseHead head = proxy::response_for_client(result.response, framing, route_->via);
  // The head borrows its text (http::ResponseHead): the cookie lives until it is written.
  const std::optional<std::string> cookie = affinity_cookie();
  if (cookie) head.fields.push_back({"Set-Cookie", *cookie});
  HttpDownstream* c = client();
  c->set_response_watermark(cap_);
  c->begin_response(head);
  idle_.progress();
  pump_response();
  if (state_ == State::Forwarding) pump_request();
}

std::optional<std::string> HttpExchange::affinity_cookie() const {
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  const proxy::ServerState* server = upstream_lease_.server();
  if (upstream == nullptr || server == nullptr) return std::nullopt;
  return proxy::affinity_cookie_for(*upstream, server->config, *request_);
}

void HttpExchange::on_upstream_read(bufferevent* /*bev*/, void* self) {
  // A plain socket was read up to the max single read (cap_) in one readv by the
  // connection itself (proxy/upstream/upstream_connection.h); TLS by the bufferevent.
  static_cast<HttpExchange*>(self)->pump_response();
}

void HttpExchange::on_upstream_write(bufferevent* /*bev*/, void* self) {
  static_cast<HttpExchange*>(self)->pump_request();
}

void HttpExchange::on_upstream_event(bufferevent* /*bev*/, short what, void* self) {
  auto* e = static_cast<HttpExchange*>(self);
  if ((what & BEV_EVENT_EOF) != 0) {
    e->upstream_eof_ = true;
    e->pump_response();
  } else if ((what & BEV_EVENT_ERROR) != 0) {
    e->abort("upstream connection failed during the response");
  }
}

void HttpExchange::on_client_drained() {
  if (state_ == State::Forwarding) pump_response();
}

void HttpExchange::pump_response() {
  if (state_ != State::Forwarding) return;
  HttpDownstream* c = client();
  evbuffer* in = bufferevent_get_input(upstream_.get());
  bool moved = false;
  for (;;) {
    if (c->response_buffered() >= cap_) {
      // Backpressure: the client reads slower than the upstream sends.
      upstream_.set_reading(false);
      break;
    }
    const std::size_t available = evbuffer_get_length(in);
    const http1::BodyStep step =
        response_body_.next(proxy::body_front(in, response_body_, available), available);
    switch (step.action) {
      case http1::BodyStep::Action::Data:
        c->response_body(in, step.n);
        response_body_.took(step.n);
        stats_.upstream_to_client.bytes += step.n;
        moved = true;
        continue;
      case http1::BodyStep::Action::Skip:
        evbuffer_drain(in, step.n);
        continue;
      case http1::BodyStep::Action::Done:
        response_done();
        return;
      case http1::BodyStep::Action::Error:
        abort("invalid response content from upstream " + upstream_addr_ + ": " +
              std::string(step.reason));
        return;
      case http1::BodyStep::Action::NeedMore:
        break;
    }
    if (upstream_eof_) {
      if (response_body_.complete_at_eof()) {
        response_done();
      } else {
        abort("upstream " + upstream_addr_ + " closed before the end of the response");
      }
      return;
    }
    upstream_batching_.update(proxy::socket_of(upstream_.get()), response_body_.bytes_expected(),
                              evbuffer_get_length(in));
    upstream_.set_reading(true);
    break;
  }
  if (moved) idle_.progress();
}

void HttpExchange::response_done() {
  // The client's connection may carry its next request only if this one's content was
  // read to its end (otherwise its rest would be taken for the next request).
  http_response_complete_ = true;
  http_reusable_ = request_read_;
  state_ = State::Answered;
  keep_upstream();
  if (HttpDownstream* c = client()) c->end_response();
  finish({});
}

void HttpExchange::keep_upstream() {
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  if (upstream == nullptr || upstream->keepalive == 0 || !upstream_reusable_ || !request_sent_ ||
      upstream_eof_ || !upstream_ || !upstream_lease_)
    return;
  // Whatever the upstream sent beyond its response, or request bytes still unwritten,
  // would belong to no exchange: such a connection is closed instead.
  if (evbuffer_get_length(bufferevent_get_input(upstream_.get())) != 0 ||
      evbuffer_get_length(bufferevent_get_output(upstream_.get())) != 0)
    return;
  bufferevent_setcb(upstream_.get(), nullptr, nullptr, nullptr, nullptr);
  bufferevent_setwatermark(upstream_.get(), EV_WRITE, 0, 0);
  upstream_batching_.reset(proxy::socket_of(upstream_.get()));  // the next head is small
  upstream_out_ = nullptr;
  worker_.idle_upstreams().put(upstream->name, upstream_lease_.server_ptr(), std::move(upstream_),
                               upstream->keepalive, upstream->keepalive_timeout);
}

void HttpExchange::abort(std::string reason) {
  if (state_ == State::Done) return;
  finish(reason);
}

void HttpExchange::on_idle() {
  const std::string after =
      " within idle_timeout (" + std::to_string(route_->idle_timeout.count()) + " ms)";
  if (state_ == State::Forwarding) {
    abort("no progress" + after);
  } else if (upstream_out_ != nullptr &&
             evbuffer_get_length(bufferevent_get_output(upstream_out_)) >= cap_) {
    refuse({504, "upstream did not take the request content" + after, {}});
  } else if (splicing_ && splice_->waiting_for_destination()) {
    refuse({504, "upstream did not take the request content" + after, {}});
  } else if (!request_read_) {
    refuse({408, "request content not received" + after, {}});
  } else {
    // The connector's own deadlines (connect, response head) answer first; this is the
    // backstop.
    refuse({504, "no response from upstream" + after, {}});
  }
}

}  // namespace wsgate::gateway
