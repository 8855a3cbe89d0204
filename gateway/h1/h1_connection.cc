#include "gateway/h1/h1_connection.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/tcp.h>
#include <openssl/err.h>

#include <utility>

#include "conf/address.h"
#include "gateway/exchange/error_response.h"
#include "gateway/h1/h1_request.h"
#include "gateway/worker.h"
#include "proxy/relay/bufferevent_endpoint.h"
#include "proxy/relay/socket_io.h"

namespace wsgate::gateway {
namespace {

// How long a refused client gets to read our answer before the socket closes.
constexpr long long kLingerMs = 2000;
// Request content buffered from the client beyond a head's worth, while an HTTP
// exchange reads it (reading pauses above).
constexpr std::size_t kBodyReadAhead = 64 * 1024;
// Between spliced chunks of a chunked body: the CRLF ending one chunk and the next
// chunk-size line (usually under 16 bytes); data read with them goes through user space.
constexpr std::size_t kChunkLineRead = 64;
// One read of a head from a plain socket: libevent's own size.
constexpr std::size_t kHeadReadSize = 4096;

}  // namespace

const char* to_string(H1Connection::State s) {
  switch (s) {
    case H1Connection::State::ReadingHead:
      return "reading_head";
    case H1Connection::State::Exchanging:
      return "exchanging";
    case H1Connection::State::Answering:
      return "answering";
    case H1Connection::State::Done:
      return "done";
  }
  return "?";
}

H1Connection::H1Connection(Worker& worker, uint64_t id, conf::ConfigPtr config,
                           tls::TlsSnapshotPtr tls, const conf::Listener& listener,
                           std::size_t listener_index, evutil_socket_t fd, const sockaddr* peer)
    : worker_(worker),
      id_(id),
      config_(std::move(config)),
      tls_(std::move(tls)),
      listener_(listener),
      started_(std::chrono::steady_clock::now()),
      timer_(worker.base(), [this] { on_timer(); }),
      next_(worker.base(),
            [this] {
              if (state_ == State::ReadingHead && client_ &&
                  evbuffer_get_length(bufferevent_get_input(client_.get())) != 0) {
                read_head();
                pace_reading();
              }
            }),
      send_staged_(worker.base(), [this] { send_staged(); }) {
  conf::SocketAddressText peer_text = conf::describe(peer);
  facts_.client_ip = std::move(peer_text.ip);
  facts_.client_addr = std::move(peer_text.ip_port);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const tls::ServerContext* server_tls = tls_ && listener_index < tls_->listeners.size()
                                             ? tls_->listeners[listener_index].get()
                                             : nullptr;
  if (server_tls != nullptr) {
    facts_.tls = true;
    client_.reset(bufferevent_openssl_socket_new(worker.base(), fd, server_tls->new_ssl(),
                                                 BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
    // A peer that closes TCP without close_notify is an EOF, not an error.
    bufferevent_openssl_set_allow_dirty_shutdown(client_.get(), 1);
  } else {
    client_.reset(bufferevent_socket_new(worker.base(), fd, BEV_OPT_CLOSE_ON_FREE));
  }
}

H1Connection::~H1Connection() {
  if (exchange_ != nullptr) exchange_->detach_downstream();
}

void H1Connection::start() {
  bufferevent_setcb(client_.get(), &H1Connection::on_client_read, &H1Connection::on_client_write,
                    &H1Connection::on_client_event, this);
  if (!facts_.tls) {
    reader_ = proxy::ReadWatch(worker_.base(), bufferevent_getfd(client_.get()),
                               &H1Connection::on_socket_readable, this);
    // The input is appended to by read_socket() from now on, not by the bufferevent.
    evbuffer_unfreeze(bufferevent_get_input(client_.get()), 0);
  }
  // Stop reading once a head's worth (plus slack) is buffered: a client must wait for
  // our answer before sending frames (RFC 6455 4.1), so more is never needed here.
  set_read_limit(listener_.max_header_bytes + 4096);
  await_head();
}

void H1Connection::await_head() {
  const long long ms = listener_.handshake_timeout.count();
  timeval now{};
  event_base_gettimeofday_cached(worker_.base(), &now);
  const timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  timeradd(&now, &limit, &head_due_);
  if (timer_.pending() && !timercmp(&timer_due_, &head_due_, >)) return;  // fires first
  timer_.arm(limit);
  timer_due_ = head_due_;
}

void H1Connection::set_read_limit(std::size_t limit) {
  read_limit_ = limit;
  read_paused_ = false;
  body_spliced_ = false;
  // The bufferevent's own read watermarks stay at their default (none): see read_limit_.
  set_reading(true);
  pace_reading();
}

void H1Connection::pace_reading() {
  if (!client_ || read_limit_ == 0 || body_spliced_) return;
  const bool full = evbuffer_get_length(bufferevent_get_input(client_.get())) >= read_limit_;
  if (full == read_paused_) return;
  read_paused_ = full;
  set_reading(!full);
}

void H1Connection::set_reading(bool on) {
  if (!client_) return;
  if (!reader_) {  // TLS: the bufferevent reads and decrypts
    if (on) {
      bufferevent_enable(client_.get(), EV_READ);
    } else {
      bufferevent_disable(client_.get(), EV_READ);
    }
    return;
  }
  reader_.set(on);
}

void H1Connection::on_client_read(bufferevent* /*bev*/, void* self) {
  auto* c = static_cast<H1Connection*>(self);
  c->read_from_client();
  c->pace_reading();
}

void H1Connection::on_socket_readable(evutil_socket_t fd, short /*what*/, void* self) {
  auto* c = static_cast<H1Connection*>(self);
  evbuffer* in = bufferevent_get_input(c->client_.get());
  const std::size_t held = evbuffer_get_length(in);
  if (c->read_limit_ != 0 && held >= c->read_limit_) {
    c->pace_reading();
    return;
  }
  // A head (or what a refused client still sends) in pieces of kHeadReadSize, as libevent
  // would read it; request content up to the read limit in one readv.
  std::size_t max = kHeadReadSize;
  if (c->read_limit_ != 0) {
    const std::size_t room = c->read_limit_ - held;
    const bool content = c->state_ == State::Exchanging && !c->request_body_.done();
    max = content ? room : std::min(room, kHeadReadSize);
    if (content && c->chunk_lines_only_ && c->request_body_.needs_front())
      max = std::min(max, kChunkLineRead);
  }
  const proxy::ReadOutcome r = proxy::read_socket(fd, in, max);
  if (r == proxy::ReadOutcome::WouldBlock) return;
  if (r == proxy::ReadOutcome::Data) {
    c->read_from_client();
    c->pace_reading();
    return;
  }
  // EOF or an error: nothing more will come, and the connection hears it once, as the
  // bufferevent would report it.
  c->reader_.close();
  const short what = r == proxy::ReadOutcome::Eof ? BEV_EVENT_EOF : BEV_EVENT_ERROR;
  on_client_event(c->client_.get(), static_cast<short>(BEV_EVENT_READING | what), c);
}

void H1Connection::read_from_client() {
  evbuffer* in = bufferevent_get_input(client_.get());
  if (state_ == State::ReadingHead) {
    read_head();
  } else if (state_ == State::Exchanging) {
    if (exchange_ != nullptr) exchange_->on_request_body_ready();
  } else if (state_ == State::Answering) {
    // Discard what the client still sends while it reads our answer.
    evbuffer_drain(in, evbuffer_get_length(in));
  }
}

void H1Connection::read_head() {
  evbuffer* in = bufferevent_get_input(client_.get());
  if (listener_.h2c && !facts_.tls) {
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
  // The parsed head is only read here, before the exchange starts (request_from_h1 copies
  // what the exchange keeps): one per worker thread, reused, so a request allocates
  // neither its head's copy nor its field list, and an idle connection holds no head.
  thread_local http1::RequestHead head;
  const http1::ParseResult parsed = parse_request_head(std::string_view(p, len), limits, head);
  switch (parsed.state) {
    case http1::ParseState::Incomplete:
      return;
    case http1::ParseState::Error: {
      http::Checked<http::RequestHead> refused;
      refused.refusal = {parsed.error_status, parsed.error_reason, {}};
      start_exchange(std::move(refused));
      return;
    }
    case http1::ParseState::Complete: {
      // Anything after the head stays buffered: the request's content for an HTTP
      // exchange, the relay's first bytes for a WebSocket or a tunnel.
      evbuffer_drain(in, parsed.head_length);
      ++requests_;
      http::Checked<http::RequestHead> request =
          h1::request_from_h1(head, facts_.tls ? "https" : "http");
      request_minor_ = head.version_minor;
      // RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 closes here.
      keep_alive_ = head.version_minor == 1 && !head_close_requested(head);
      expect_continue_ = head.version_minor == 1 && head_expects_continue(head);
      request_body_ = http1::BodyDecoder();
      chunk_lines_only_ = false;
      if (request.ok() && head.method != "CONNECT") {
        // RFC 9112 6.3: how the content ends, decided once, strictly (smuggling).
        const http1::BodyFraming framing = http1::request_body_framing(head);
        if (!framing.ok()) {
          request.refusal = {framing.error_status, framing.error_reason, {}};
        } else {
          request.value.has_body = framing.kind != http1::BodyKind::None;
          request_body_ = http1::BodyDecoder(framing);
          if (request.value.has_body) set_read_limit(listener_.max_header_bytes + kBodyReadAhead);
        }
      }
      // head is not read after this: start_exchange() may parse the next head into it.
      start_exchange(std::move(request));
      return;
    }
  }
}

bool H1Connection::head_close_requested(const http1::RequestHead& head) {
  for (const http1::Header& h : head.headers)
    if (http1::iequals(h.name, "connection") && http1::header_has_token(h.value, "close"))
      return true;
  return false;
}

bool H1Connection::head_expects_continue(const http1::RequestHead& head) {
  for (const http1::Header& h : head.headers)
    if (http1::iequals(h.name, "expect") && http1::iequals(h.value, "100-continue")) return true;
  return false;
}

void H1Connection::start_exchange(http::Checked<http::RequestHead>&& request) {
  // The wait for the head is over (timer_ may still fire: on_timer() ignores it).
  state_ = State::Exchanging;
  // The exchange gets the verdict; the connection keeps its place in the [limits] counts
  // (the slot) for as long as it is open, across the requests of a kept-alive connection.
  ClientLimits::Decision verdict;
  verdict.exceeded = admission_.exceeded;
  verdict.close_now = admission_.close_now;
  verdict.retry_after_s = admission_.retry_after_s;
  exchange_ =
      worker_.add_exchange(Exchange::make(ExchangeContext{worker_, id_, config_, tls_, listener_},
                                          *this, std::move(request), std::move(verdict)));
  exchange_->start();
}

void H1Connection::refuse(const http::Refusal& refusal) {
  const std::string response = error_response(refusal.status, refusal.reason, refusal.fields);
  bufferevent_write(client_.get(), response.data(), response.size());
  answer_then_linger();
}

void H1Connection::answer_then_linger() {
  state_ = State::Answering;
  set_read_limit(0);  // what the client still sends is read and discarded
  bufferevent_setwatermark(client_.get(), EV_WRITE, 0, 0);
  bufferevent_enable(client_.get(), EV_WRITE);
  timer_.arm_ms(kLingerMs);
  timer_due_ = {};  // not a wait for a head
  if (evbuffer_get_length(bufferevent_get_output(client_.get())) == 0)
    on_client_write(client_.get(), this);
}

ClientChannel H1Connection::hand_over_client() {
  state_ = State::Done;
  timer_.cancel();
  next_.cancel();
  send_staged_.cancel();
  request_batching_.reset(proxy::socket_of(client_.get()));
  read_limit_ = 0;  // the relay paces its own reading, with its own event
  reader_.reset();
  bufferevent_setcb(client_.get(), nullptr, nullptr, nullptr, nullptr);
  ClientChannel channel{proxy::make_endpoint(std::move(client_), /*plain_socket=*/!facts_.tls)};
  // The relay owns the socket and the exchange the [limits] place from now on: this
  // connection has nothing left to do, and would only sit in memory for the relay's whole
  // life (about 1 KB per idle WebSocket, docs/benchmarks.md).
  channel.downstream_leaves = true;
  channel.slot = std::move(admission_.slot);
  exchange_ = nullptr;
  worker_.session_done(this);
  return channel;
}

ClientChannel H1Connection::accept_websocket(const http1::ResponseHead& upgrade) {
  // The upstream's 101 head goes to the client as it is: its accept value answers the
  // client's own key, which went upstream unchanged.
  bufferevent_write(client_.get(), upgrade.raw.data(), upgrade.raw.size());
  return hand_over_client();
}

ClientChannel H1Connection::accept_tunnel() {
  // RFC 9110 9.3.6: any 2xx turns the connection into a tunnel; it has no content.
  constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
  bufferevent_write(client_.get(), kEstablished.data(), kEstablished.size());
  return hand_over_client();
}

void H1Connection::begin_upstream_answer(const http1::ResponseHead& head) {
  bufferevent_write(client_.get(), head.raw.data(), head.raw.size());
}

void H1Connection::upstream_answer_body(evbuffer* from, std::size_t n) {
  evbuffer_remove_buffer(from, bufferevent_get_output(client_.get()), n);
}

void H1Connection::end_upstream_answer() {
  answer_then_linger();
}

void H1Connection::on_client_write(bufferevent* bev, void* self) {
  auto* c = static_cast<H1Connection*>(self);
  if (c->state_ == State::Exchanging && c->exchange_ != nullptr) {
    c->exchange_->on_client_drained();
    return;
  }
  if (c->state_ != State::Answering) return;
  if (evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
  // Answer flushed: half-close and let the client read it before the socket goes
  // (closing with unread input would reset the connection and lose our answer).
  // On TLS the half-close starts with close_notify (RFC 8446 6.1).
  proxy::send_close_notify(bev);
  shutdown(bufferevent_getfd(bev), SHUT_WR);
}

void H1Connection::on_client_event(bufferevent* /*bev*/, short what, void* self) {
  auto* c = static_cast<H1Connection*>(self);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    c->on_tls_established();
    return;
  }
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) return;
  switch (c->state_) {
    case State::ReadingHead:
      if (c->facts_.tls && !c->tls_established_) {
        c->on_tls_failed();
        break;
      }
      c->close("client closed before sending a complete request");
      break;
    case State::Exchanging:
      c->exchange_->on_client_gone("client closed during the handshake");
      break;
    case State::Answering:
      if (c->exchange_ != nullptr) {
        c->exchange_->on_client_gone({});
      } else {
        c->exchange_finished({});  // a forwarded response was flushed; the client closed
      }
      break;
    default:
      break;
  }
}

void H1Connection::on_tls_established() {
  tls_established_ = true;
  SSL* ssl = bufferevent_openssl_get_ssl(client_.get());
  facts_.tls_version = tls::describe_session(ssl);
  worker_.metrics().tls_handshake(listener_.name, facts_.tls_version);
  // Only a certificate that passed verification counts (client_auth optional/required).
  if (X509* peer = SSL_get0_peer_certificate(ssl);
      peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
    char subject[512];
    X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
    facts_.client_subject = subject;
  }
  // RFC 9113 3.2: ALPN chose h2 (offered only when the listener has http2 = true).
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2') hand_to_h2();
}

void H1Connection::hand_to_h2() {
  // The connection speaks HTTP/2: it leaves this object for an H2Session, whose streams
  // carry exchanges of their own. This one ends without an access-log line.
  timer_.cancel();
  state_ = State::Done;
  DownstreamFacts facts = facts_;
  facts.protocol = "h2";
  if (reader_) {
    // The session reads through the bufferevent, which keeps its input's end frozen
    // outside its own read callback.
    reader_.reset();
    evbuffer_freeze(bufferevent_get_input(client_.get()), 0);
  }
  worker_.start_h2(std::move(client_), config_, tls_, listener_, std::move(facts),
                   std::move(admission_));
  worker_.session_done(this);
}

void H1Connection::on_tls_failed() {
  std::string reason = "connection closed during the TLS handshake";
  if (const unsigned long err = bufferevent_get_openssl_error(client_.get()); err != 0) {
    const char* text = ERR_reason_error_string(err);
    reason = text != nullptr ? text : "TLS error " + std::to_string(err);
  }
  while (bufferevent_get_openssl_error(client_.get()) != 0) {
  }
  worker_.record_tls_failure(listener_.name, reason, facts_.client_addr);
  close("TLS handshake failed: " + reason);
}

void H1Connection::on_timer() {
  switch (state_) {
    case State::ReadingHead: {
      timeval now{};
      event_base_gettimeofday_cached(worker_.base(), &now);
      if (timercmp(&now, &head_due_, <)) {  // armed for an earlier wait: the rest of this one
        timeval left{};
        timersub(&head_due_, &now, &left);
        timer_.arm(left);
        timer_due_ = head_due_;
        break;
      }
      if (requests_ > 0 && evbuffer_get_length(bufferevent_get_input(client_.get())) == 0) {
        // Kept alive after a response, and no next request came: just close (RFC 9112
        // 9.5: a server may close an idle connection).
        exchange_finished({});
        break;
      }
      if (facts_.tls && !tls_established_) {
        // No TLS session to carry a 408: just close.
        worker_.record_tls_failure(listener_.name, "handshake timeout", facts_.client_addr);
        close("TLS handshake not completed in time");
        break;
      }
      http::Checked<http::RequestHead> refused;
      refused.refusal = {408,
                         "request head not received within " +
                             std::to_string(listener_.handshake_timeout.count()) + " ms",
                         {}};
      received_bytes_ = true;
      start_exchange(std::move(refused));
      break;
    }
    case State::Answering:
      if (exchange_ != nullptr) {
        exchange_->on_client_gone({});  // lingered long enough
      } else {
        exchange_finished({});
      }
      break;
    default:
      break;
  }
}

void H1Connection::drain() {
  draining_ = true;
  if (state_ == State::ReadingHead && requests_ > 0 && client_ &&
      evbuffer_get_length(bufferevent_get_input(client_.get())) == 0) {
    // Idle between two requests: nothing to answer, just close (RFC 9112 9.6).
    exchange_finished({});
    return;
  }
  if (state_ == State::ReadingHead) {
    http::Checked<http::RequestHead> refused;
    refused.refusal = {503, "server is shutting down", {}};
    start_exchange(std::move(refused));
    return;
  }
  if (exchange_) exchange_->drain();
}

void H1Connection::retire() {
  retiring_ = true;
  if (state_ == State::ReadingHead && requests_ > 0 && client_ &&
      evbuffer_get_length(bufferevent_get_input(client_.get())) == 0) {
    exchange_finished({});  // idle between two requests (RFC 9112 9.6)
  }
}

void H1Connection::close(std::string_view why) {
  // The connection ends before any request: a client that sent something still gets an
  // access-log line (with no status), through an exchange that never starts.
  if (received_bytes_ && state_ == State::ReadingHead) {
    state_ = State::Exchanging;
    exchange_ = worker_.add_exchange(Exchange::make(
        ExchangeContext{worker_, id_, config_, tls_, listener_}, *this, {}, std::move(admission_)));
    exchange_->on_client_gone(why);
    return;
  }
  exchange_finished({});
}

void H1Connection::exchange_finished(const ExchangeEnd& end) {
  exchange_ = nullptr;
  if (state_ == State::Done) return;
  send_staged();  // the response's last bytes go before the next request or the close
  // Once: the flush below ends in exchange_finished({}) again, which must close.
  const bool response_begun = std::exchange(response_begun_, false);
  if (end.response_complete && client_) {
    if (end.reusable && !close_after_response_ && !draining_ && !retiring_) {
      next_request();
    } else {
      answer_then_linger();  // flush the response, then close (RFC 9112 9.6)
    }
    return;
  }
  if (response_begun && client_) {
    // The response was cut (the upstream failed mid-way): what is buffered still goes
    // out, then the connection closes without the response's end (no last chunk, or
    // fewer bytes than its Content-Length), which tells the client it is incomplete.
    answer_then_linger();
    return;
  }
  state_ = State::Done;
  timer_.cancel();
  if (client_) {
    set_reading(false);
    bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
    // A TLS session that ends without close_notify is dropped from OpenSSL's session
    // cache (RFC 8446 6.1 asks for the alert): a client that closed before sending a
    // request could not resume by session ID afterwards.
    if (tls_established_) proxy::send_close_notify(client_.get());
  }
  worker_.session_done(this);
}

metrics::ConnectionInfo H1Connection::describe(int worker) const {
  metrics::ConnectionInfo c;
  c.worker = worker;
  c.id = id_;
  c.client = facts_.client_addr;
  c.state = to_string(state_);
  c.labels.listener = listener_.name;
  c.labels.route = "-";
  c.labels.upstream = "-";
  c.labels.server = "-";
  c.tls = facts_.tls_version;
  c.age_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return c;
}

}  // namespace wsgate::gateway
