#include "gateway/exchange/exchange.h"

#include <charconv>
#include <utility>

#include "gateway/exchange/forwarded_client.h"
#include "gateway/exchange/http_exchange.h"
#include "gateway/exchange/limit_refusal.h"
#include "gateway/exchange/path_normalize.h"
#include "gateway/exchange/request_id.h"
#include "gateway/exchange/router.h"
#include "gateway/exchange/tunnel_exchange.h"
#include "gateway/exchange/websocket_exchange.h"
#include "gateway/worker.h"
#include "proxy/auth/token_source.h"
#include "proxy/codec/frame_codec.h"
#include "proxy/codec/proxy_protocol_writer.h"
#include "proxy/relay/bufferevent_endpoint.h"

namespace wsgate::gateway {
namespace {

// Answers a request that was refused before any decision (a limit, a malformed request).
class RefusedExchange final : public Exchange {
 public:
  RefusedExchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request)
      : Exchange(std::move(ctx), downstream, std::move(request)) {}

 private:
  void decide() override {}
};

}  // namespace

const char* to_string(Exchange::State s) {
  switch (s) {
    case Exchange::State::Deciding:
      return "reading_head";  // the name /connections has always shown before a decision
    case Exchange::State::ConnectingUpstream:
      return "connecting_upstream";
    case Exchange::State::ForwardingRefusal:
      return "forwarding_refusal";
    case Exchange::State::Forwarding:
      return "forwarding";
    case Exchange::State::Relaying:
      return "relaying";
    case Exchange::State::Answered:
      return "rejecting";
    case Exchange::State::Done:
      return "done";
  }
  return "?";
}

std::unique_ptr<Exchange> Exchange::make(ExchangeContext ctx, Downstream& downstream,
                                         http::Checked<http::RequestHead>&& request,
                                         ClientLimits::Decision admission) {
  // A trusted proxy's connection was not counted for [limits] (Worker::admit_client):
  // each of its requests is, by the client its X-Forwarded-For names (or the proxy's own
  // address without one), and holds that place until the exchange ends.
  const std::vector<conf::IpNetwork>& trusted = ctx.config->trusted_proxies;
  const std::string& peer = downstream.facts().client_ip;
  if (request.ok() && !admission.refused() && !trusted.empty() && is_trusted_proxy(peer, trusted)) {
    const std::optional<std::string> client = forwarded_client(peer, request.value, trusted);
    admission = ctx.worker.admit_forwarded_client(client ? *client : peer);
  }
  std::unique_ptr<Exchange> e;
  if (admission.refused() || !request.ok()) {
    e = std::make_unique<RefusedExchange>(std::move(ctx), downstream, std::move(request.value));
  } else if (request.value.method == "CONNECT" && request.value.protocol.empty()) {
    e = std::make_unique<TunnelExchange>(std::move(ctx), downstream, std::move(request.value));
  } else if (!request.value.is_websocket() && downstream.http() != nullptr) {
    e = std::make_unique<HttpExchange>(std::move(ctx), downstream, std::move(request.value));
  } else {
    e = std::make_unique<WebSocketExchange>(std::move(ctx), downstream, std::move(request.value));
  }
  if (admission.refused()) {
    // Over a [limits] value: answered before any routing or upstream work.
    e->early_refusal_ = std::make_unique<http::Refusal>(refusal_for(admission, e->config_->limits));
  } else if (!request.ok()) {
    e->early_refusal_ = std::make_unique<http::Refusal>(std::move(request.refusal));
  }
  e->admission_ = std::move(admission);
  return e;
}

Exchange::Exchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request)
    : worker_(ctx.worker),
      id_(ctx.id),
      config_(std::move(ctx.config)),
      tls_(std::move(ctx.tls)),
      listener_(ctx.listener),
      downstream_(&downstream),
      // trusted_proxies: a trusted proxy's X-Forwarded-For names the client.
      facts_(with_forwarded_client(downstream.facts(), request, config_->trusted_proxies)),
      request_(std::make_unique<http::RequestHead>(std::move(request))),
      started_(std::chrono::steady_clock::now()),
      accepted_status_(downstream.websocket_accepted_status()),
      // A trusted proxy's X-Request-Id is kept (the peer, not the client it names, is
      // the one trusted); any other is replaced, and the upstream gets the one chosen.
      request_id_(
          choose_request_id(downstream.facts().client_ip, *request_, config_->trusted_proxies)) {
  set_request_id(*request_, request_id_);
}

Exchange::LoggedRequest::LoggedRequest(std::string_view path, std::string_view host,
                                       std::string_view user_agent, std::string_view origin) {
  // Heads are bounded far below 4 GiB (gateway/h1, gateway/h2 limits).
  text_.reserve(path.size() + host.size() + user_agent.size() + origin.size());
  for (std::size_t i = 0; const std::string_view part : {path, host, user_agent}) {
    text_.append(part);
    ends_[i++] = static_cast<uint32_t>(text_.size());
  }
  text_.append(origin);
}

Exchange::LoggedRequest Exchange::logged_request() const {
  const http::RequestHead& request = *request_;
  std::string_view path = request.path;
  // A JWT in the query (token_from "query:NAME") never reaches the access log.
  std::string redacted;
  if (route_ != nullptr && route_->auth.type == conf::RouteAuth::Type::Jwt) {
    redacted = proxy::redact_token_query(path, route_->auth.jwt.token_from);
    path = redacted;
  }
  const http::Field* user_agent = request.find("user-agent");
  const http::Field* origin = request.find("origin");
  return LoggedRequest(path, request.authority, user_agent ? user_agent->value : std::string_view(),
                       origin ? origin->value : std::string_view());
}

Exchange::~Exchange() = default;

void Exchange::start() {
  if (std::unique_ptr<http::Refusal> refusal = std::move(early_refusal_)) {
    refuse(std::move(*refusal));
    return;
  }
  decide();
}

void Exchange::refuse(http::Refusal refusal) {
  // A client gets one answer: a second refusal (a late failure) is not sent.
  if (state_ == State::Done || state_ == State::Relaying || state_ == State::Answered) return;
  if (auth_) auth_->cancel();
  stop_upstream_work();
  answered(refusal.status);
  end_reason_ = refusal.reason;
  state_ = State::Answered;
  if (downstream_ == nullptr) {
    finish({});
    return;
  }
  downstream_->refuse(refusal);
}

void Exchange::begin_relaying(int status, ClientChannel client, BufferEventPtr upstream,
                              bool upstream_plain, proxy::RelaySettings settings) {
  settings.idle_timeouts = &worker_.idle_timeouts();
  settings.spliced = &worker_.metrics().spliced_bytes();
  answered(status);
  relay_counts_ = worker_.metrics().relay_started(labels(), seconds_since_accept());
  state_ = State::Relaying;
  if (client.downstream_leaves) {
    connection_slot_ = std::move(client.slot);
    downstream_ = nullptr;
  }
  relay_ = std::make_unique<proxy::Relay>(worker_.base(), std::move(client.endpoint),
                                          proxy::make_endpoint(std::move(upstream), upstream_plain),
                                          settings, stats_, [this] { finish({}); });
  // Bytes that came with the handshake (an upstream's first message right behind its
  // 101, a tunnel client's TLS ClientHello) go first.
  relay_->start();
  logged_ = logged_request();
  // Freed: nothing reads the request while relaying.
  request_.reset();
  arm_token_expiry();
}

void Exchange::authorize(std::function<void()> next) {
  if (!has_auth(*route_)) {
    next();
    return;
  }
  auth_ = std::make_unique<AuthStep>(worker_, *config_, tls_.get(), *route_);
  auth_->run(*request_, facts_.client_ip, [this, next = std::move(next)](AuthOutcome&& outcome) {
    if (state_ != State::Deciding) return;  // drained meanwhile: already answered
    if (outcome.refusal) {
      refuse(std::move(*outcome.refusal));
    } else if (outcome.service_answer) {
      answer_from_auth_service(std::move(*outcome.service_answer));
    } else {
      if (route_->auth.type == conf::RouteAuth::Type::Jwt && route_->auth.jwt.close_on_expiry)
        token_expires_ = outcome.expires;
      user_ = std::move(outcome.user);
      next();
    }
  });
}

void Exchange::answer_from_auth_service(AuthOutcome::ServiceAnswer answer) {
  if (downstream_ == nullptr) {
    finish("client closed during the handshake");
    return;
  }
  http1::ResponseHead head = auth_service_response_head(answer);
  answered(answer.status);
  end_reason_ = "auth service denied the request";
  state_ = State::Answered;
  downstream_->begin_upstream_answer(head);
  EvbufferPtr body(evbuffer_new());
  evbuffer_add(body.get(), answer.body.data(), answer.body.size());
  if (!answer.body.empty()) downstream_->upstream_answer_body(body.get(), answer.body.size());
  downstream_->end_upstream_answer();
}

void Exchange::arm_token_expiry() {
  if (!token_expires_ || is_tunnel() || route_ == nullptr) return;
  // Spread like a drain: tokens issued together expire together, and their clients
  // would all reconnect in the same instant. Each connection closes at its own point of
  // [exp, exp + clock_skew), a window the handshake accepts a token in anyway.
  const auto skew =
      std::chrono::duration_cast<std::chrono::milliseconds>(route_->auth.jwt.clock_skew).count();
  uint64_t mix = id_ * 0x9E3779B97F4A7C15ull;  // spreads consecutive ids (Fibonacci hashing)
  mix ^= mix >> 29;
  const long long offset = skew > 0 ? static_cast<long long>(mix % static_cast<uint64_t>(skew)) : 0;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      *token_expires_ - std::chrono::system_clock::now());
  expiry_ = std::make_unique<Timer>(worker_.base(), [this] { token_expired(); });
  expiry_->arm_ms(std::max<long long>(left.count(), 0) + offset);
}

void Exchange::token_expired() {
  // RFC 6455 7.4.1: 1008, a policy violation; at the next frame boundary, as a drain.
  if (close_websocket(ws::close_code::kPolicyViolation, "token expired"))
    worker_.metrics().auth_expired_close(route_ != nullptr ? route_->name : "-");
}

void Exchange::on_client_gone(std::string_view why) {
  if (state_ == State::Relaying) return;  // the relay hears it itself
  finish(state_ == State::Answered ? std::string_view{} : why);
}

void Exchange::detach_downstream() {
  downstream_ = nullptr;
  on_client_gone("client closed during the handshake");
}

void Exchange::drain() {
  switch (state_) {
    case State::ConnectingUpstream:
      // A forwarded request may have reached its upstream already (a POST acted upon):
      // it completes, within drain_timeout, and its connection closes after it.
      if (http_request_) break;
      [[fallthrough]];
    case State::Deciding:
      refuse({503, "server is shutting down", {}});
      break;
    case State::Relaying:
      // A tunnel has no Close frame to send: it runs until drain_timeout closes it.
      if (!is_tunnel()) relay_->close(ws::close_code::kGoingAway, "server shutting down");
      break;
    default:
      break;
  }
}

bool Exchange::close_websocket(uint16_t code, std::string_view reason) {
  if (state_ != State::Relaying || !relay_ || relay_->closing()) return false;
  upstream_lease_.mark_closing();
  relay_->close(code, reason);
  return true;
}

void Exchange::finish(std::string_view reason) {
  if (state_ == State::Done) return;
  if (!reason.empty() && end_reason_.empty()) end_reason_.assign(reason);
  const bool relayed = state_ == State::Relaying;
  state_ = State::Done;
  if (auth_) auth_->cancel();
  if (expiry_) expiry_->cancel();
  stop_upstream_work();
  write_access_log(relayed ? std::string_view{} : std::string_view(end_reason_));
  if (http_request_) {
    worker_.metrics().http_request_ended(route_ != nullptr ? route_->name : "-", status_,
                                         seconds_since_accept());
  } else if (status_ == 0) {
    worker_.metrics().handshake_answered(listener_.name, 0);
  }
  if (relayed)
    worker_.metrics().relay_ended(relay_counts_,
                                  route_ != nullptr ? std::string_view(route_->name) : "-", stats_,
                                  seconds_since_accept());
  ExchangeEnd end;
  end.relayed = relayed;
  end.reusable = http_reusable_;
  end.response_complete = http_response_complete_;
  // The upstream's connection ended without a Close (1006), or, in a tunnel, failed (a
  // reset, not an EOF): over HTTP/2 the stream is reset (RFC 9113 8.5).
  const bool tunnel_reset = relay_ && relay_->tunnel_end() == proxy::TunnelEnd::UpstreamReset;
  end.upstream_failed =
      relayed && (tunnel_reset || (!is_tunnel() && stats_.closed_by == metrics::Side::Upstream &&
                                   stats_.close_code == ws::close_code::kAbnormal));
  if (Downstream* d = std::exchange(downstream_, nullptr)) d->exchange_finished(end);
  worker_.exchange_done(this);
}

void Exchange::write_access_log(std::string_view reason) {
  if (!worker_.access_log().enabled()) return;  // access_log = "": nothing to build
  const DownstreamFacts& f = facts_;
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  metrics::AccessRecord r;
  r.client = f.client_addr;
  r.listener = listener_.name;
  r.route = route_ != nullptr ? std::string_view(route_->name) : std::string_view("-");
  r.upstream = upstream_addr_;
  r.status = status_ == 101 ? accepted_status_ : status_;
  r.protocol = f.protocol;
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  r.stats = relay_ || http_request_ ? &stats_ : nullptr;
  r.http = http_request_;
  if (http_request_) r.method = request_->method;
  // Before relaying (a refusal, a forwarded request) request_ still holds the request.
  if (!relay_) logged_ = logged_request();
  if (!is_tunnel()) {  // a tunnel's authority is its target, logged as such
    r.path = logged_.path();
    r.host = logged_.host();
  }
  r.user_agent = logged_.user_agent();
  r.origin = logged_.origin();
  r.subprotocol = subprotocol_;
  r.request_id = request_id_;
  r.reason = reason;
  r.tls_version = f.tls_version;
  r.client_subject = f.client_subject;
  r.target = target_;
  r.user = user_;
  r.via = f.via;
  r.proxy_sni = f.proxy_sni;
  r.proxy_alpn = f.proxy_alpn;
  worker_.access_log().write(r);
}

void Exchange::answered(int status) {
  if (status_ != 0) return;
  status_ = status;
  if (!http_request_) worker_.metrics().handshake_answered(listener_.name, status);
}

double Exchange::seconds_since_accept() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

std::optional<proxy_protocol::Endpoint> Exchange::client_endpoint() const {
  uint16_t port = 0;
  // client_addr is "ip:port" or "[ip6]:port"; just the IP behind a trusted proxy.
  const std::string& addr = facts_.client_addr;
  if (const auto colon = addr.rfind(':'); addr != facts_.client_ip && colon != std::string::npos) {
    unsigned value = 0;
    const char* end = addr.data() + addr.size();
    if (std::from_chars(addr.data() + colon + 1, end, value).ptr == end && value <= 65535)
      port = static_cast<uint16_t>(value);
  }
  return proxy_protocol::endpoint(facts_.client_ip, port);
}

metrics::ConnectionLabels Exchange::labels() const {
  metrics::ConnectionLabels l;
  l.listener = listener_.name;
  l.route = route_ != nullptr ? route_->name : "-";
  l.upstream = route_ != nullptr ? route_->upstream : "-";
  l.server = upstream_addr_;
  l.protocol = facts_.protocol == "h2" ? metrics::Protocol::H2 : metrics::Protocol::H1;
  if (is_tunnel()) {
    // Tunnel targets are unbounded: they stay out of metric labels (see describe()).
    l.protocol = metrics::Protocol::Tunnel;
    l.server = "-";
  }
  return l;
}

metrics::ConnectionInfo Exchange::describe(int worker) const {
  const DownstreamFacts& f = facts_;
  metrics::ConnectionInfo c;
  c.worker = worker;
  c.id = id_;
  c.client = f.client_addr;
  c.state = to_string(state_);
  c.labels = labels();
  c.subprotocol = subprotocol_;
  c.target = target_;
  if (is_tunnel()) c.labels.server = upstream_addr_;
  c.tls = f.tls_version;
  c.age_seconds = seconds_since_accept();
  if (state_ == State::Relaying && relay_) {
    const timeval last = relay_->last_activity();
    timeval now{};
    event_base_gettimeofday_cached(worker_.base(), &now);
    c.last_activity_unix = static_cast<double>(last.tv_sec) + last.tv_usec / 1e6;
    c.idle_seconds = static_cast<double>(now.tv_sec - last.tv_sec) +
                     static_cast<double>(now.tv_usec - last.tv_usec) / 1e6;
    c.client_to_upstream = stats_.client_to_upstream;
    c.upstream_to_client = stats_.upstream_to_client;
    c.buffered_bytes = relay_->buffered_bytes();
    c.client_pings = stats_.client_pings;
    c.upstream_pings = stats_.upstream_pings;
  }
  return c;
}

bool Exchange::choose_route() {
  const std::string host_name = normalize_host(request_->authority);
  if (!target_is_normal(request_->path)) {
    http::Checked<std::string> target = normalize_target(request_->path);
    if (!target.ok()) {
      refuse(std::move(target.refusal));
      return false;
    }
    request_->path = std::move(target.value);
  }
  const std::string_view path = target_path(request_->path);
  route_ = match_route(*config_, host_name, path);
  if (route_ == nullptr) {
    refuse({404,
            "no route for host \"" + host_name + "\" and path \"" + std::string(path) + "\"",
            {}});
    return false;
  }
  return true;
}

}  // namespace wsgate::gateway
