#include "gateway/h1_session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/tcp.h>

#include "gateway/error_response.h"
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

H1Session::H1Session(Worker& worker, uint64_t id, conf::ConfigPtr config,
                     const conf::Listener& listener, evutil_socket_t fd, const sockaddr* peer,
                     int /*peer_len*/)
    : worker_(worker),
      id_(id),
      config_(std::move(config)),
      listener_(listener),
      started_(std::chrono::steady_clock::now()),
      timer_(worker.base(), [this] { on_handshake_timeout(); }) {
  format_peer(peer, client_ip_, client_addr_);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  client_.reset(bufferevent_socket_new(worker.base(), fd, BEV_OPT_CLOSE_ON_FREE));
}

H1Session::~H1Session() {
  if (connector_) connector_->cancel();
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
  std::string request = proxy::build_upstream_request(head_, {client_ip_, "http"});
  connector_ = std::make_unique<proxy::UpstreamConnector>(
      worker_.base(), worker_.dns(), worker_.balancers().select(*upstream, client_ip_, head_),
      std::move(request),
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
  status_ = 101;
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
  relay_ = std::make_unique<proxy::Relay>(worker_.base(), std::move(client_),
                                          std::move(result.connection), settings, stats_,
                                          [this] { finish({}); });
  relay_->start();
}

void H1Session::forward_refusal(proxy::UpstreamResult&& result) {
  // The backend refused the upgrade (401, 403, 404, ...): its answer is relayed as it
  // is, body included (bounded), and the connection ends.
  status_ = result.response.status;
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
  status_ = status;
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
  shutdown(bufferevent_getfd(bev), SHUT_WR);
}

void H1Session::on_client_event(bufferevent* /*bev*/, short what, void* self) {
  auto* s = static_cast<H1Session*>(self);
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) return;
  switch (s->state_) {
    case State::ReadingHead:
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

void H1Session::on_handshake_timeout() {
  switch (state_) {
    case State::ReadingHead:
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
      relay_->close(ws::close_code::kGoingAway, "server shutting down");
      break;
    default:
      break;
  }
}

void H1Session::finish(std::string_view reason) {
  if (state_ == State::Done) return;
  if (!reason.empty() && end_reason_.empty()) end_reason_.assign(reason);
  const bool relayed = state_ == State::Relaying;
  state_ = State::Done;
  timer_.cancel();
  if (connector_) connector_->cancel();
  if (client_) bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
  write_access_log(relayed ? std::string_view{} : std::string_view(end_reason_));
  worker_.session_done(this);
}

void H1Session::write_access_log(std::string_view reason) {
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  metrics::AccessRecord r;
  r.client = client_addr_;
  r.listener = listener_.name;
  r.route = route_ != nullptr ? std::string_view(route_->name) : std::string_view("-");
  r.upstream = upstream_addr_;
  r.status = status_;
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  r.stats = relay_ ? &stats_ : nullptr;
  r.reason = reason;
  worker_.access_log().write(r);
}

}  // namespace wsgate::gateway
