// One client HTTP/1.1 connection, plain or TLS, from accept to close: the TLS handshake,
// the request head (strict, bounded, timed: handshake_timeout), the hand-off to HTTP/2
// (ALPN h2, or the h2c preface with prior knowledge), then the one Exchange its request
// starts, which this connection serves as its Downstream: our refusals (then flush,
// half-close and linger so the client reads them), the upstream's refusal passed on, or
// the 101 / 200 after which the relay owns the socket and the connection goes (the
// exchange keeps its [limits] place). For a forwarded HTTP request it is
// also the exchange's HttpDownstream: it decodes the request's content (Content-Length
// or chunked, strictly: gateway/exchange/http_downstream.h) and writes the upstream's
// response (Content-Length, or chunked to an HTTP/1.1 client); after a complete
// exchange whose request was read to its end, the next request on the connection
// (keep-alive; pipelined requests wait in the input and are served in order).
//
// Ownership: the Worker owns every connection (Worker::session_done destroys it after
// the current loop iteration) and every exchange; a connection borrows its exchange
// until exchange_finished, and detaches from it if it goes first.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "conf/config.h"
#include "gateway/client_limits.h"
#include "gateway/exchange/downstream.h"
#include "gateway/exchange/exchange.h"
#include "metrics/admin/connection_table.h"
#include "proxy/codec/http1_body.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay/read_watch.h"
#include "proxy/relay/receive_batching.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class Worker;

class H1Connection final : public Downstream, public HttpDownstream {
 public:
  enum class State {
    ReadingHead,  // TLS handshake and request head (handshake_timeout)
    Exchanging,   // the exchange decides and reaches the upstream; the client waits
    Answering,    // an answer (ours or the upstream's refusal) is flushed, then we linger
    Done,
  };

  // `tls`: the TLS contexts in force at accept; the connection keeps them alive.
  H1Connection(Worker& worker, uint64_t id, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
               const conf::Listener& listener, std::size_t listener_index, evutil_socket_t fd,
               const sockaddr* peer);
  ~H1Connection();
  H1Connection(const H1Connection&) = delete;
  H1Connection& operator=(const H1Connection&) = delete;

  void start();
  // Graceful shutdown: a head still being read gets 503; the exchange drains its own way.
  void drain();
  // The gateway drains while this connection's exchange runs: a forwarded response says
  // Connection: close, and the connection closes after it.
  void mark_draining() { draining_ = true; }
  // Binary upgrade: another process accepts now. Idle between requests: closed; anything
  // else runs to its end, and the connection closes after the response it is on.
  void retire();
  // The connection's place in the [limits] counts (Worker::admit_client), held until the
  // connection is destroyed; a refusal is answered once the request head is read.
  void set_admission(ClientLimits::Decision admission) { admission_ = std::move(admission); }
  // The connection came through a PROXY protocol balancer (gateway/proxy_header_reader.h):
  // the client address given at construction is the header's; these are the rest.
  void set_proxied(std::string via, std::string sni, std::string alpn) {
    facts_.via = std::move(via);
    facts_.proxy_sni = std::move(sni);
    facts_.proxy_alpn = std::move(alpn);
  }

  uint64_t id() const { return id_; }
  State state() const { return state_; }
  // Null until the request head is read.
  Exchange* exchange() const { return exchange_; }
  // A connection-table row while no exchange exists yet.
  metrics::ConnectionInfo describe(int worker) const;

  // Downstream.
  const DownstreamFacts& facts() const override { return facts_; }
  int websocket_accepted_status() const override { return 101; }
  void refuse(const http::Refusal& refusal) override;
  ClientChannel accept_websocket(const http1::ResponseHead& upgrade) override;
  ClientChannel accept_tunnel() override;
  void begin_upstream_answer(const http1::ResponseHead& head) override;
  void upstream_answer_body(evbuffer* from, std::size_t n) override;
  void end_upstream_answer() override;
  void exchange_finished(const ExchangeEnd& end) override;
  HttpDownstream* http() override { return this; }

  // HttpDownstream.
  BodyRead read_request_body(evbuffer* to, std::size_t max) override;
  void continue_request_body() override;
  BodySocket take_body_socket(uint64_t min_left) override;
  void body_socket_done() override;
  void begin_response(const http::ResponseHead& head) override;
  void response_body(evbuffer* from, std::size_t n) override;
  void end_response() override;
  std::size_t response_buffered() const override;
  void set_response_watermark(std::size_t high) override;

 private:
  static void on_client_read(bufferevent* bev, void* self);
  static void on_socket_readable(evutil_socket_t fd, short what, void* self);
  static void on_client_write(bufferevent* bev, void* self);
  static void on_client_event(bufferevent* bev, short what, void* self);

  void read_from_client();
  BodyRead decode_request_body(evbuffer* to, std::size_t max);
  void read_head();
  // Reading stops while read_limit_ bytes wait in the input, and resumes below it.
  void set_read_limit(std::size_t limit);
  void pace_reading();
  void set_reading(bool on);
  void next_request();
  static bool head_close_requested(const http1::RequestHead& head);
  static bool head_expects_continue(const http1::RequestHead& head);
  void start_exchange(http::Checked<http::RequestHead>&& request);
  void answer_then_linger();
  // Reading a head: handshake_timeout from now (see timer_).
  void await_head();
  void on_timer();
  void on_tls_established();
  void on_tls_failed();
  void hand_to_h2();
  void close(std::string_view why);
  ClientChannel hand_over_client();

  Worker& worker_;
  const uint64_t id_;
  conf::ConfigPtr config_;  // the snapshot this connection lives with
  tls::TlsSnapshotPtr tls_;
  const conf::Listener& listener_;
  bool tls_established_ = false;
  bool received_bytes_ = false;  // any request bytes at all (else no access-log line)
  DownstreamFacts facts_;
  std::chrono::steady_clock::time_point started_;
  State state_ = State::ReadingHead;
  BufferEventPtr client_;  // moves to the relay once the exchange relays
  // handshake_timeout while reading a head, linger after an answer. The wait for a head
  // ends without a cancel: the timer may fire later and then finds no wait in progress,
  // and a next wait keeps it when it fires no later than head_due_ (await_head(), so a
  // kept-alive connection's requests cost no event_del and event_add each).
  Timer timer_;
  timeval timer_due_{};           // when timer_ fires, while it is pending
  timeval head_due_{};            // the end of the current wait for a head
  Exchange* exchange_ = nullptr;  // owned by the Worker; null before the head and after the end
  ClientLimits::Decision admission_;

  // What the input may hold before reading stops (0: no limit). Done by hand, not with a
  // bufferevent read watermark: libevent 2.1 runs the read callback again (deferred)
  // after every one that leaves the input at its high watermark, so a client whose
  // bytes the exchange cannot take yet (an upstream slower than an upload, early
  // pipelined requests) kept the worker busy: 38,000 read callbacks for 1,400 reads in
  // one 100 MiB upload.
  std::size_t read_limit_ = 0;
  bool read_paused_ = false;       // reading is off because the input is at read_limit_
  bool body_spliced_ = false;      // the exchange moves the request content from the socket
  bool chunk_lines_only_ = false;  // a chunked body's data is spliced: read only the lines
  // A plain client's socket is read with this event, not by the bufferevent: one readv
  // per wake-up and no FIONREAD (proxy/relay/socket_io.h). Null for TLS, whose bytes the
  // bufferevent decrypts, and once the socket left for the relay or an HTTP/2 session.
  proxy::ReadWatch reader_;

  // The request being served (HTTP forwarding).
  http1::BodyDecoder request_body_;
  proxy::ReceiveBatching request_batching_;  // a large request body is read in large pieces
  int request_minor_ = 1;                    // HTTP/1.<minor> of the request
  bool keep_alive_ = false;                  // the client allows another request on this connection
  bool expect_continue_ = false;             // Expect: 100-continue (RFC 9110 10.1.1)
  bool response_chunked_ = false;            // the response goes out chunk-encoded
  bool response_begun_ = false;              // a forwarded response's head went out
  bool close_after_response_ = false;
  bool draining_ = false;
  bool retiring_ = false;  // no keep-alive: the client's next request goes to the new process
  uint64_t requests_ = 0;  // requests whose head was read on this connection
  Timer next_;             // starts reading a pipelined request after the loop iteration
  // A forwarded response's bytes, gathered over one loop iteration (head and content
  // together) and then sent in one write (proxy/relay/socket_io.h).
  EvbufferPtr staged_;
  Timer send_staged_;
  void stage_for_sending();
  void send_staged();
};

const char* to_string(H1Connection::State s);

}  // namespace wsgate::gateway
