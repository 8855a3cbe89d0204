#include "proxy/upstream/upstream_connector.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "conf/address.h"
#include "proxy/codec/proxy_protocol_writer.h"
#include "proxy/relay/socket_io.h"
#include "proxy/upstream/response_head_reader.h"

namespace wsgate::proxy {
namespace {

// An upstream's response head is bounded like a client's request head.
constexpr http1::Limits kResponseLimits{16 * 1024, 100};

}  // namespace

UpstreamConnector::UpstreamConnector(event_base* base, evdns_base* dns,
                                     const tls::ClientContext* tls, ServerSelection servers,
                                     std::string request, UpstreamTimeouts timeouts, Done done)
    : base_(base),
      dns_(dns),
      tls_(tls),
      servers_(std::move(servers)),
      request_(std::move(request)),
      timeouts_(timeouts),
      done_(std::move(done)),
      timer_(base, [this] { on_timeout(); }) {}

void UpstreamConnector::start() {
  try_next(502, "no upstream server configured");
}

void UpstreamConnector::cancel() {
  state_ = State::Done;
  timer_.cancel();
  bev_.reset();
  servers_ = ServerSelection();  // gives back the slot of an attempt in progress
}

void UpstreamConnector::attempt_failed(int status, std::string_view kind, std::string reason) {
  servers_.failed(reason, kind);
  if (!replayable_) {
    fail(status, std::move(reason));
    return;
  }
  try_next(status, std::move(reason));
}

void UpstreamConnector::request_sent() {
  if (state_ == State::AwaitingResponse) timer_.arm_ms(timeouts_.handshake.count());
}

void UpstreamConnector::on_write(bufferevent* /*bev*/, void* self) {
  auto* c = static_cast<UpstreamConnector*>(self);
  if (c->state_ == State::AwaitingResponse && c->stream_.writable) c->stream_.writable();
}

void UpstreamConnector::try_next(int last_status, std::string last_reason) {
  bev_.reset();
  const conf::UpstreamServer* next = servers_.next();
  if (next == nullptr) {
    // Nothing to try at all (every server down, ejected or full): 503. Otherwise the
    // last failure says what went wrong.
    if (attempts_ == 0) {
      fail(503, servers_.unavailable_reason());
    } else {
      if (attempts_ > 1) last_reason += " (" + std::to_string(attempts_) + " servers tried)";
      fail(last_status, std::move(last_reason));
    }
    return;
  }
  current_ = *next;
  if (tls_ != nullptr) tls_name_ = next->name.empty() ? next->host : next->name;
  attempts_++;
  if (const conf::Upstream* upstream = servers_.upstream();
      idle_ != nullptr && upstream != nullptr) {
    if (UpstreamConnection idle = idle_->take(upstream->name, servers_.current())) {
      reused_ = true;
      bev_ = std::move(idle);
      bufferevent_setcb(bev_.get(), &UpstreamConnector::on_read, &UpstreamConnector::on_write,
                        &UpstreamConnector::on_event, this);
      on_connected();
      return;
    }
  }
  connect_current();
}

void UpstreamConnector::connect_current() {
  reused_ = false;
  bev_.reset();
  const conf::HostPort& server = current_;
  state_ = State::Connecting;
  tls_pending_ = false;
  // With send_proxy_protocol the PROXY header precedes a wss:// upstream's TLS: the TCP
  // connection comes first and TLS is layered on it once the header is written.
  if (tls_ != nullptr && !sends_proxy_header()) {
    // wss:// upstream: BEV_EVENT_CONNECTED fires once the TLS handshake (with
    // certificate and name verification) is done, within the same connect timeout.
    // A DNS-found member is verified as the name it was found by, not as its address.
    bev_.reset(bufferevent_openssl_socket_new(base_, -1, tls_->new_ssl(tls_name_),
                                              BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE));
    bufferevent_openssl_set_allow_dirty_shutdown(bev_.get(), 1);
  } else {
    bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  }
  bufferevent_setcb(bev_.get(), &UpstreamConnector::on_read, &UpstreamConnector::on_write,
                    &UpstreamConnector::on_event, this);
  timer_.arm_ms(timeouts_.connect.count());
  connect_started_ = std::chrono::steady_clock::now();
  // IP literals connect at once (through evdns they cost 8,000 instructions of parsing
  // per connection); names resolve through evdns without blocking the loop.
  sockaddr_storage address{};
  socklen_t address_length = 0;
  const int started =
      conf::to_sockaddr(server, address, address_length)
          ? bufferevent_socket_connect(bev_.get(), reinterpret_cast<sockaddr*>(&address),
                                       static_cast<int>(address_length))
          : bufferevent_socket_connect_hostname(bev_.get(), dns_, AF_UNSPEC, server.host.c_str(),
                                                server.port);
  if (started != 0) {
    // Failed synchronously (e.g. no route); the event callback will not run.
    const int err = EVUTIL_SOCKET_ERROR();
    attempt_failed(502, "connect",
                   "cannot connect to upstream " + conf::to_string(server) + ": " +
                       evutil_socket_error_to_string(err));
  }
}

void UpstreamConnector::on_event(bufferevent* /*bev*/, short what, void* self) {
  auto* c = static_cast<UpstreamConnector*>(self);
  const conf::HostPort& server = c->current_;
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    if (c->sends_proxy_header() && !c->tls_pending_) {
      if (!c->send_proxy_header()) return;
      if (c->tls_pending_) return;  // BEV_EVENT_CONNECTED again once TLS is up
    }
    c->servers_.connected(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c->connect_started_)
            .count());
    c->on_connected();
    return;
  }
  if ((what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) == 0) return;
  if (c->state_ == State::Connecting) {
    const int dns_err = bufferevent_socket_get_dns_error(c->bev_.get());
    if (c->tls_ != nullptr && dns_err == 0) {
      if (const unsigned long err = bufferevent_get_openssl_error(c->bev_.get()); err != 0) {
        const char* text = ERR_reason_error_string(err);
        while (bufferevent_get_openssl_error(c->bev_.get()) != 0) {
        }
        c->attempt_failed(502, "tls",
                          "TLS handshake with upstream " + conf::to_string(server) + " failed: " +
                              (text != nullptr ? text : "error " + std::to_string(err)));
        return;
      }
    }
    std::string why = dns_err != 0
                          ? std::string("cannot resolve upstream ") + conf::to_string(server) +
                                ": " + evutil_gai_strerror(dns_err)
                          : "cannot connect to upstream " + conf::to_string(server) + ": " +
                                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
    c->attempt_failed(502, dns_err != 0 ? "resolve" : "connect", std::move(why));
    return;
  }
  if (c->state_ == State::AwaitingResponse) {
    if (c->reused_ && c->replayable_ && c->interim_responses_ == 0 &&
        evbuffer_get_length(bufferevent_get_input(c->bev_.get())) == 0) {
      // RFC 9112 9.3.1: the server may close an idle connection just as a request goes
      // out on it; an idempotent request is sent again on a new connection.
      c->connect_current();
      return;
    }
    // Nothing reached the client yet, so another server may still serve it.
    c->attempt_failed(
        502, "closed",
        "upstream " + conf::to_string(server) + " closed the connection before answering");
  }
}

bool UpstreamConnector::sends_proxy_header() const {
  const conf::Upstream* u = servers_.upstream();
  return u != nullptr && u->send_proxy_protocol != conf::Upstream::ProxyProtocol::Off;
}

bool UpstreamConnector::send_proxy_header() {
  const conf::Upstream* upstream = servers_.upstream();  // set: sends_proxy_header() said so
  const auto version =
      upstream != nullptr && upstream->send_proxy_protocol == conf::Upstream::ProxyProtocol::V1
          ? proxy_protocol::Version::V1
          : proxy_protocol::Version::V2;
  // The destination is the server's address as connected to.
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  std::optional<proxy_protocol::Endpoint> server;
  char ip[INET6_ADDRSTRLEN] = {};
  if (getpeername(bufferevent_getfd(bev_.get()), reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    if (peer.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
      server = proxy_protocol::endpoint(ip, ntohs(a->sin_port));
    } else if (peer.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
      server = proxy_protocol::endpoint(ip, ntohs(a->sin6_port));
    }
  }
  const std::string header = proxy_client_ && server
                                 ? proxy_protocol::encode(version, *proxy_client_, *server)
                                 : proxy_protocol::encode_local(version);
  bufferevent_write(bev_.get(), header.data(), header.size());
  if (tls_ == nullptr) return true;
  // The header waits in the TCP bufferevent's output; the TLS filter writes its
  // ClientHello behind it (and owns the TCP bufferevent from now on).
  bufferevent* tcp = bev_.release().release();
  bev_.reset(bufferevent_openssl_filter_new(base_, tcp, tls_->new_ssl(tls_name_),
                                            BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE));
  if (!bev_) {
    bufferevent_free(tcp);
    attempt_failed(502, "tls", "cannot start TLS with upstream " + conf::to_string(current_));
    return false;
  }
  bufferevent_openssl_set_allow_dirty_shutdown(bev_.get(), 1);
  bufferevent_setcb(bev_.get(), &UpstreamConnector::on_read, &UpstreamConnector::on_write,
                    &UpstreamConnector::on_event, this);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  tls_pending_ = true;
  return true;
}

void UpstreamConnector::on_connected() {
  state_ = State::AwaitingResponse;
  interim_responses_ = 0;
  if (!reused_) {  // a pooled connection has it already
    const int one = 1;
    setsockopt(bufferevent_getfd(bev_.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  // A streamed request's response deadline starts once all of it is sent
  // (request_sent); until then its owner watches the body's progress.
  if (stream_.connected) {
    timer_.cancel();
  } else {
    timer_.arm_ms(timeouts_.handshake.count());
  }
  // A plain socket gets the head at once (proxy/relay/socket_io.h); the write event
  // is needed only for what does not fit.
  send_now(bev_.get(), request_.data(), request_.size(), /*plain=*/tls_ == nullptr);
  // A plain socket is read with the connection's own event from now on (no FIONREAD per
  // read); a pooled one does so already.
  if (tls_ == nullptr) bev_.read_plain_socket();
  bev_.set_reading(true);
  if (evbuffer_get_length(bufferevent_get_output(bev_.get())) > 0)
    bufferevent_enable(bev_.get(), EV_WRITE);
  if (stream_.connected) stream_.connected(bev_.get());
}

void UpstreamConnector::on_read(bufferevent* /*bev*/, void* self) {
  static_cast<UpstreamConnector*>(self)->on_response_bytes();
}

void UpstreamConnector::on_response_bytes() {
  if (state_ != State::AwaitingResponse) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  UpstreamResult result;
  // Interim responses (100 Continue, 103 Early Hints) are skipped: the answer is the
  // first 101 or final status after them (RFC 9110 15.2).
  const http1::ParseResult parsed =
      read_final_response_head(in, kResponseLimits, result.response, interim_responses_);
  if (parsed.state == http1::ParseState::Incomplete) return;
  const conf::HostPort& server = current_;
  if (parsed.state == http1::ParseState::Error) {
    attempt_failed(
        502, "bad_response",
        "invalid response from upstream " + conf::to_string(server) + ": " + parsed.error_reason);
    return;
  }
  evbuffer_drain(in, parsed.head_length);
  state_ = State::Done;
  timer_.cancel();
  // Reading stays enabled for the new owner (it sets its callbacks from `done_`, before
  // the loop reads again): no epoll_ctl per request.
  bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
  result.answered = true;
  result.connection = std::move(bev_);
  result.server = server;
  result.lease = servers_.succeeded(result.response.status);
  result.attempts = attempts_;
  result.reused = reused_;
  done_(std::move(result));
}

void UpstreamConnector::on_timeout() {
  const conf::HostPort& server = current_;
  if (state_ == State::Connecting) {
    attempt_failed(504, "connect_timeout",
                   "timed out connecting to upstream " + conf::to_string(server));
  } else if (state_ == State::AwaitingResponse) {
    // The request was sent: do not multiply the wait by trying every server.
    std::string why =
        "upstream " + conf::to_string(server) + " did not answer the handshake in time";
    servers_.failed(why, "response_timeout");
    fail(504, std::move(why));
  }
}

void UpstreamConnector::fail(int status, std::string reason) {
  state_ = State::Done;
  timer_.cancel();
  bev_.reset();
  UpstreamResult result;
  result.refusal = {status, std::move(reason), {}};
  result.attempts = attempts_;
  result.server = current_;
  done_(std::move(result));
}

}  // namespace wsgate::proxy
