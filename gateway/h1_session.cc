#include "gateway/h1_session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/tcp.h>
#include <openssl/err.h>

#include <utility>

#include "gateway/error_response.h"
#include "gateway/limit_refusal.h"
#include "gateway/router.h"
#include "gateway/websocket_handshake.h"
#include "gateway/worker.h"
#include "proxy/frame_codec.h"
#include "proxy/upstream_request.h"
#include "proxy/websocket_key.h"

namespace wsgate::gateway {
namespace {

// How long a rejected client gets to read our answer before the socket closes.
constexpr long long kLingerMs = 2000;
// A backend's refusal body is relayed up to this size, then cut.
constexpr uint64_t kMaxRefusalBody = 1024 * 1024;

void format_peer(const sockaddr* sa, std::string& ip, std::string& addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    port = ntohs(in->sin_port);
    ip = buf;
    addr = ip + ":" + std::to_string(port);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    port = ntohs(in6->sin6_port);
    ip = buf;
    addr = "[" + ip + "]:" + std::to_string(port);
  }
}

std::string host_port_text(const conf::HostPort& s) {
  if (s.host.empty()) return "-";
  return s.host.find(':') != std::string::npos ? "[" + s.host + "]:" + std::to_string(s.port)
                                               : s.host + ":" + std::to_string(s.port);
}

}  // namespace

const char* to_string(H1Session::State s) {
  switch (s) {
    case H1Session::State::ReadingHead:
      return "reading_head";
    case H1Session::State::ConnectingUpstream:
      return "connecting_upstream";
    case H1Session::State::ForwardingRefusal:
      return "forwarding_refusal";
    case H1Session::State::Relaying:
      return "relaying";
    case H1Session::State::Rejecting:
      return "rejecting";
    case H1Session::State::Done:
      return "done";
  }
  return "?";
}

H1Session::H1Session(Worker& worker, uint64_t id, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                     const conf::Listener& listener, std::size_t listener_index, evutil_socket_t fd,
                     const sockaddr* peer, int /*peer_len*/)
    : worker_(worker),
      id_(id),
      config_(std::move(config)),
      tls_(std::move(tls)),
      listener_(listener),
      started_(std::chrono::steady_clock::now()),
      timer_(worker.base(), [this] { on_handshake_timeout(); }) {
  format_peer(peer, client_ip_, client_addr_);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const tls::ServerContext* server_tls = tls_ && listener_index < tls_->listeners.size()
                                             ? tls_->listeners[listener_index].get()
                                             : nullptr;
  if (server_tls != nullptr) {
    is_tls_ = true;
    client_.reset(bufferevent_openssl_socket_new(worker.base(), fd, server_tls->new_ssl(),
                                                 BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
    // A peer that closes TCP without close_notify is an EOF, not an error.
    bufferevent_openssl_set_allow_dirty_shutdown(client_.get(), 1);
  } else {
    client_.reset(bufferevent_socket_new(worker.base(), fd, BEV_OPT_CLOSE_ON_FREE));
    client_is_plain_socket_ = true;
  }
}

H1Session::H1Session(Worker& worker, uint64_t id, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                     const conf::Listener& listener, BufferEventPtr client, DownstreamFacts facts,
                     DoneCallback on_done)
    : worker_(worker),
      id_(id),
      config_(std::move(config)),
      tls_(std::move(tls)),
      listener_(listener),
      is_tls_(facts.tls),
      tls_established_(true),
      tls_version_(std::move(facts.tls_version)),
      client_subject_(std::move(facts.client_subject)),
      client_addr_(std::move(facts.client_addr)),
      client_ip_(std::move(facts.client_ip)),
      started_(std::chrono::steady_clock::now()),
      client_(std::move(client)),
      timer_(worker.base(), [this] { on_handshake_timeout(); }),
      protocol_(facts.protocol),
      on_done_(std::move(on_done)) {}

H1Session::~H1Session() {
  if (connector_) connector_->cancel();
  if (on_done_) std::exchange(on_done_, nullptr)(Outcome{});
}

void H1Session::start() {
  bufferevent_setcb(client_.get(), &H1Session::on_client_read, &H1Session::on_client_write,
                    &H1Session::on_client_event, this);
  // Stop reading once a head's worth (plus slack) is buffered: a client must wait for
  // our answer before sending frames (RFC 6455 4.1), so more is never needed here.
  bufferevent_setwatermark(client_.get(), EV_READ, 0, listener_.max_header_bytes + 4096);
  bufferevent_enable(client_.get(), EV_READ);
  timer_.arm_ms(listener_.handshake_timeout.count());
}

void H1Session::on_client_read(bufferevent* /*bev*/, void* self) {
  auto* s = static_cast<H1Session*>(self);
  if (s->state_ == State::ReadingHead) {
    s->read_head();
  } else if (s->state_ == State::Rejecting) {
    // Discard what the client still sends while it reads our answer.
    evbuffer* in = bufferevent_get_input(s->client_.get());
    evbuffer_drain(in, evbuffer_get_length(in));
  }
}

void H1Session::read_head() {
  evbuffer* in = bufferevent_get_input(client_.get());
  if (listener_.h2c && !is_tls_ && protocol_ == "http/1.1") {
    // RFC 9113 3.3: with prior knowledge an HTTP/2 client starts with the preface.
    constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const std::size_t n = std::min(evbuffer_get_length(in), kPreface.size());
    const auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(n)));
    if (std::string_view(p, n) == kPreface.substr(0, n)) {
      if (n == kPreface.size()) hand_to_h2();
      return;
    }
  }
  received_bytes_ = true;
  const http1::Limits limits{listener_.max_header_bytes, listener_.max_headers};
  const std::size_t len = std::min(evbuffer_get_length(in), limits.max_head_bytes + 4);
  const auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(len)));
  const http1::ParseResult parsed = parse_request_head(std::string_view(p, len), limits, head_);
  switch (parsed.state) {
    case http1::ParseState::Incomplete:
      return;
    case http1::ParseState::Error:
      reject(parsed.error_status, parsed.error_reason);
      return;
    case http1::ParseState::Complete:
      // Anything after the head stays buffered: it belongs to the relay, if one starts.
      evbuffer_drain(in, parsed.head_length);
      timer_.cancel();
      handle_request();
      return;
  }
}

void H1Session::handle_request() {
  if (admission_.refused()) {
    // Over a [limits] value: answered before any routing or upstream work.
    LimitRefusal refusal = refusal_for(admission_, config_->limits);
    reject(refusal.status, std::move(refusal.reason), refusal.headers);
    return;
  }
  if (head_.method == "CONNECT") {
    handle_connect();
    return;
  }
  const http1::Header* host = head_.find("host");
  const std::string host_name = normalize_host(host != nullptr ? host->value : "");
  route_ = match_route(*config_, host_name, target_path(head_.target));
  if (route_ == nullptr) {
    reject(404, "no route for host \"" + host_name + "\" and path \"" +
                    std::string(target_path(head_.target)) + "\"");
    return;
  }
  HandshakeVerdict verdict = validate_upgrade_request(head_, route_->allowed_origins);
  if (!verdict.ok()) {
    reject(verdict.status, std::move(verdict.reason), verdict.headers);
    return;
  }
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  if (upstream == nullptr || upstream->servers.empty()) {
    reject(502, "route has no upstream servers");
    return;
  }
  state_ = State::ConnectingUpstream;
  std::string request = proxy::build_upstream_request(
      head_, {client_ip_, is_tls_ ? "https" : "http", client_subject_});
  connector_ = std::make_unique<proxy::UpstreamConnector>(
      worker_.base(), worker_.dns(), tls_ ? tls_->upstream(upstream->name) : nullptr,
      worker_.balancers_for(*config_).select(*upstream, client_ip_, head_), std::move(request),
      proxy::UpstreamTimeouts{route_->connect_timeout, route_->upstream_handshake_timeout},
      [this](proxy::UpstreamResult&& r) { on_upstream(std::move(r)); });
  connector_->start();
}

void H1Session::on_upstream(proxy::UpstreamResult&& result) {
  upstream_addr_ = host_port_text(result.server);
  upstream_lease_ = std::move(result.lease);  // counts for the balancers until we end
  if (!result.answered) {
    reject(result.status, std::move(result.reason));
    return;
  }
  if (result.response.status != 101) {
    forward_refusal(std::move(result));
    return;
  }
  // RFC 6455 4.1: the client would fail a 101 without the right accept value or the
  // Upgrade token; the gateway checks first and answers 502 instead.
  const http1::Header* accept = result.response.find("sec-websocket-accept");
  const http1::Header* upgrade = result.response.find("upgrade");
  const http1::Header* key = head_.find("sec-websocket-key");
  if (accept == nullptr || key == nullptr || accept->value != ws::compute_accept(key->value)) {
    reject(502, "upstream answered 101 with a wrong Sec-WebSocket-Accept");
    return;
  }
  if (upgrade == nullptr || !http1::header_has_token(upgrade->value, "websocket")) {
    reject(502, "upstream answered 101 without Upgrade: websocket");
    return;
  }
  start_relay(std::move(result));
}

void H1Session::start_relay(proxy::UpstreamResult&& result) {
  answered(101);
  if (const http1::Header* p = result.response.find("sec-websocket-protocol"))
    subprotocol_.assign(p->value);
  relay_counts_ = worker_.metrics().relay_started(labels(), seconds_since_accept());
  state_ = State::Relaying;
  timer_.cancel();
  bufferevent_setwatermark(client_.get(), EV_READ, 0, 0);
  // The backend's 101 head goes to the client as it is: its accept value answers the
  // client's own key, which was forwarded unchanged.
  bufferevent_write(client_.get(), result.response.raw.data(), result.response.raw.size());

  proxy::RelaySettings settings;
  // RFC 7692 6: RSV1 marks compressed messages once permessage-deflate is agreed.
  const http1::Header* ext = result.response.find("sec-websocket-extensions");
  settings.rsv1_allowed =
      ext != nullptr && ext->value.find("permessage-deflate") != std::string_view::npos;
  settings.max_message_size = route_->max_message_size;
  settings.buffer_size = route_->buffer_size;
  settings.idle_timeout = route_->idle_timeout;
  settings.ping_interval = route_->ping_interval;
  settings.ping_timeout = route_->ping_timeout;
  settings.ping_client = route_->ping_to != conf::Route::PingTo::Upstream;
  settings.ping_upstream = route_->ping_to != conf::Route::PingTo::Client;
  settings.max_message_rate = route_->max_message_rate;
  settings.max_message_burst = route_->max_message_burst;
  const bool upstream_plain = tls_ == nullptr || tls_->upstream(route_->upstream) == nullptr;
  relay_ = std::make_unique<proxy::Relay>(worker_.base(), std::move(client_),
                                          client_is_plain_socket_, std::move(result.connection),
                                          upstream_plain, settings, stats_, [this] { finish({}); });
  relay_->start();
  // The handshake's state is not needed any more: an idle connection holds only the relay.
  head_ = http1::RequestHead();
  worker_.retire(std::move(connector_));
}

void H1Session::forward_refusal(proxy::UpstreamResult&& result) {
  // The backend refused the upgrade (401, 403, 404, ...): its answer is relayed as it
  // is, body included (bounded), and the connection ends.
  answered(result.response.status);
  state_ = State::ForwardingRefusal;
  bufferevent_write(client_.get(), result.response.raw.data(), result.response.raw.size());
  const http1::Header* cl = result.response.find("content-length");
  refusal_body_left_ = kMaxRefusalBody;
  if (cl != nullptr) {
    refusal_body_left_ = std::min<uint64_t>(
        std::strtoull(std::string(cl->value).c_str(), nullptr, 10), kMaxRefusalBody);
  }
  refusing_upstream_ = std::move(result.connection);
  bufferevent_setcb(refusing_upstream_.get(), &H1Session::on_refusal_read, nullptr,
                    &H1Session::on_refusal_event, this);
  bufferevent_enable(refusing_upstream_.get(), EV_READ);
  timer_.arm_ms(route_->upstream_handshake_timeout.count());
  pump_refusal(false);
}

void H1Session::on_refusal_read(bufferevent* /*bev*/, void* self) {
  static_cast<H1Session*>(self)->pump_refusal(false);
}

void H1Session::on_refusal_event(bufferevent* /*bev*/, short what, void* self) {
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0)
    static_cast<H1Session*>(self)->pump_refusal(true);
}

void H1Session::pump_refusal(bool upstream_finished) {
  if (state_ != State::ForwardingRefusal) return;
  evbuffer* in = bufferevent_get_input(refusing_upstream_.get());
  const uint64_t take = std::min<uint64_t>(evbuffer_get_length(in), refusal_body_left_);
  evbuffer_remove_buffer(in, bufferevent_get_output(client_.get()), take);
  refusal_body_left_ -= take;
  if (refusal_body_left_ == 0 || upstream_finished) {
    refusing_upstream_.reset();
    // Reuse the rejecting path: flush, half-close, linger, close.
    state_ = State::Rejecting;
    end_reason_ = "upstream refused the upgrade";
    bufferevent_setwatermark(client_.get(), EV_WRITE, 0, 0);
    bufferevent_enable(client_.get(), EV_READ | EV_WRITE);
    timer_.arm_ms(kLingerMs);
    if (evbuffer_get_length(bufferevent_get_output(client_.get())) == 0)
      on_client_write(client_.get(), this);
  }
}

void H1Session::reject(int status, std::string reason,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
  if (connector_) connector_->cancel();
  if (dialer_) dialer_->cancel();
  answered(status);
  end_reason_ = std::move(reason);
  state_ = State::Rejecting;
  const std::string response = error_response(status, end_reason_, headers);
  bufferevent_setwatermark(client_.get(), EV_READ, 0, 0);
  bufferevent_setwatermark(client_.get(), EV_WRITE, 0, 0);
  bufferevent_write(client_.get(), response.data(), response.size());
  bufferevent_enable(client_.get(), EV_READ | EV_WRITE);
  timer_.arm_ms(kLingerMs);
}

void H1Session::on_client_write(bufferevent* bev, void* self) {
  auto* s = static_cast<H1Session*>(self);
  if (s->state_ != State::Rejecting) return;
  if (evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
  // Answer flushed: half-close and let the client read it before the socket goes
  // (closing with unread input would reset the connection and lose our answer).
  // On TLS the half-close starts with close_notify (RFC 8446 6.1).
  proxy::send_close_notify(bev);
  shutdown(bufferevent_getfd(bev), SHUT_WR);
}

void H1Session::on_client_event(bufferevent* /*bev*/, short what, void* self) {
  auto* s = static_cast<H1Session*>(self);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    s->on_tls_established();
    return;
  }
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) return;
  switch (s->state_) {
    case State::ReadingHead:
      if (s->is_tls_ && !s->tls_established_) {
        s->on_tls_failed();
        break;
      }
      s->finish("client closed before sending a complete request");
      break;
    case State::ConnectingUpstream:
    case State::ForwardingRefusal:
      s->finish("client closed during the handshake");
      break;
    case State::Rejecting:
      s->finish({});
      break;
    default:
      break;
  }
}

void H1Session::on_tls_established() {
  tls_established_ = true;
  SSL* ssl = bufferevent_openssl_get_ssl(client_.get());
  tls_version_ = tls::describe_session(ssl);
  worker_.metrics().tls_handshake(listener_.name, tls_version_);
  // Only a certificate that passed verification counts (client_auth optional/required).
  if (X509* peer = SSL_get0_peer_certificate(ssl);
      peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
    char subject[512];
    X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
    client_subject_ = subject;
  }
  // RFC 9113 3.2: ALPN chose h2 (offered only when the listener has http2 = true).
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2') hand_to_h2();
}

void H1Session::hand_to_h2() {
  // The connection speaks HTTP/2: it leaves this session for an H2Session, whose streams
  // come back to H1Sessions of their own. This one ends without an access-log line.
  timer_.cancel();
  state_ = State::Done;
  worker_.start_h2(
      std::move(client_), config_, tls_, listener_,
      DownstreamFacts{client_addr_, client_ip_, is_tls_, tls_version_, client_subject_, "h2"},
      std::move(admission_));
  worker_.session_done(this);
}

void H1Session::on_tls_failed() {
  std::string reason = "connection closed during the TLS handshake";
  if (const unsigned long err = bufferevent_get_openssl_error(client_.get()); err != 0) {
    const char* text = ERR_reason_error_string(err);
    reason = text != nullptr ? text : "TLS error " + std::to_string(err);
  }
  while (bufferevent_get_openssl_error(client_.get()) != 0) {
  }
  worker_.record_tls_failure(listener_.name, reason, client_addr_);
  finish("TLS handshake failed: " + reason);
}

void H1Session::on_handshake_timeout() {
  switch (state_) {
    case State::ReadingHead:
      if (is_tls_ && !tls_established_) {
        // No TLS session to carry a 408: just close.
        worker_.record_tls_failure(listener_.name, "handshake timeout", client_addr_);
        finish("TLS handshake not completed in time");
        break;
      }
      reject(408, "request head not received within " +
                      std::to_string(listener_.handshake_timeout.count()) + " ms");
      break;
    case State::ForwardingRefusal:
      pump_refusal(true);
      break;
    case State::Rejecting:
      finish({});
      break;
    default:
      break;
  }
}

void H1Session::drain() {
  switch (state_) {
    case State::ReadingHead:
    case State::ConnectingUpstream:
      reject(503, "server is shutting down");
      break;
    case State::Relaying:
      // A tunnel has no Close frame to send: it runs until drain_timeout closes it.
      if (!is_tunnel()) relay_->close(ws::close_code::kGoingAway, "server shutting down");
      break;
    default:
      break;
  }
}

bool H1Session::close_websocket(uint16_t code, std::string_view reason) {
  if (state_ != State::Relaying || !relay_ || relay_->closing()) return false;
  upstream_lease_.mark_closing();
  relay_->close(code, reason);
  return true;
}

void H1Session::finish(std::string_view reason) {
  if (state_ == State::Done) return;
  if (!reason.empty() && end_reason_.empty()) end_reason_.assign(reason);
  const bool relayed = state_ == State::Relaying;
  state_ = State::Done;
  timer_.cancel();
  if (connector_) connector_->cancel();
  if (dialer_) dialer_->cancel();
  if (client_) bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
  // A connection that sent nothing (a port probe, a health check) leaves no access line;
  // TLS handshake failures are in the error log.
  if (received_bytes_) {
    write_access_log(relayed ? std::string_view{} : std::string_view(end_reason_));
    if (status_ == 0) worker_.metrics().handshake_answered(listener_.name, 0);
  }
  if (relayed) worker_.metrics().relay_ended(relay_counts_, stats_, seconds_since_accept());
  if (on_done_) {
    Outcome outcome;
    // The upstream's connection ended without a Close (1006), or, in a tunnel, failed (a
    // reset, not an EOF): over HTTP/2 the stream is reset (RFC 9113 8.5).
    const bool tunnel_reset = relay_ && relay_->tunnel_end() == proxy::TunnelEnd::UpstreamReset;
    outcome.upstream_vanished =
        relayed && (tunnel_reset || (!is_tunnel() && stats_.closed_by == metrics::Side::Upstream &&
                                     stats_.close_code == ws::close_code::kAbnormal));
    std::exchange(on_done_, nullptr)(outcome);
  }
  worker_.session_done(this);
}

void H1Session::write_access_log(std::string_view reason) {
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  metrics::AccessRecord r;
  r.client = client_addr_;
  r.listener = listener_.name;
  r.route = route_ != nullptr ? std::string_view(route_->name) : std::string_view("-");
  r.upstream = upstream_addr_;
  // RFC 8441 5: an HTTP/2 client saw 200 where an HTTP/1.1 one sees 101.
  r.status = status_ == 101 && protocol_ == "h2" ? 200 : status_;
  r.protocol = protocol_;
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  r.stats = relay_ ? &stats_ : nullptr;
  r.reason = reason;
  r.tls_version = tls_version_;
  r.client_subject = client_subject_;
  r.target = tunnel_target_;
  r.user = proxy_user_;
  worker_.access_log().write(r);
}

void H1Session::answered(int status) {
  if (status_ != 0) return;
  status_ = status;
  worker_.metrics().handshake_answered(listener_.name, status);
}

double H1Session::seconds_since_accept() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

metrics::ConnectionLabels H1Session::labels() const {
  metrics::ConnectionLabels l;
  l.listener = listener_.name;
  l.route = route_ != nullptr ? route_->name : "-";
  l.upstream = route_ != nullptr ? route_->upstream : "-";
  l.server = upstream_addr_;
  l.protocol = protocol_ == "h2" ? metrics::Protocol::H2 : metrics::Protocol::H1;
  if (is_tunnel()) {
    // Tunnel targets are unbounded: they stay out of metric labels (see describe()).
    l.protocol = metrics::Protocol::Tunnel;
    l.server = "-";
  }
  return l;
}

metrics::ConnectionInfo H1Session::describe(int worker) const {
  metrics::ConnectionInfo c;
  c.worker = worker;
  c.id = id_;
  c.client = client_addr_;
  c.state = to_string(state_);
  c.labels = labels();
  c.subprotocol = subprotocol_;
  c.target = tunnel_target_;
  if (is_tunnel()) c.labels.server = upstream_addr_;
  c.tls = tls_version_;
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

}  // namespace wsgate::gateway
