// One active health probe of one server: a TCP connect ("tcp"), a connect plus a
// WebSocket opening handshake that must be answered with 101 and the right
// Sec-WebSocket-Accept ("websocket"), or a connect plus "GET path" that must be answered
// with a 2xx or 3xx, or a status of expect_status ("http"); within the check's timeout.
//
// Ownership: the HealthChecker owns the probe and destroys it only outside its
// callbacks (when starting the next probe, or at shutdown). `done` runs at most once.
#pragma once

#include <functional>
#include <string>

#include "conf/config.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::proxy {

// An "http" check's verdict on a final response status (RFC 9110 15: 2xx success, 3xx
// redirection both say the server is serving; expect_status, when given, replaces that).
bool http_check_healthy(const conf::HealthCheck& check, int status);

class HealthProbe {
 public:
  using Done = std::function<void(bool ok, std::string detail)>;

  HealthProbe(event_base* base, evdns_base* dns, const conf::UpstreamServer& server,
              const conf::HealthCheck& check, Done done);
  HealthProbe(const HealthProbe&) = delete;
  HealthProbe& operator=(const HealthProbe&) = delete;

  void start();
  // Bytes written before the check's request (a LOCAL PROXY protocol header, for an
  // upstream with send_proxy_protocol). A "tcp" check only connects and sends nothing.
  void send_first(std::string bytes) { preamble_ = std::move(bytes); }

 private:
  static void on_read(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  void on_connected();
  void on_response();
  void finish(bool ok, std::string detail);

  const conf::UpstreamServer& server_;
  const conf::HealthCheck& check_;
  event_base* base_;
  evdns_base* dns_;
  Done done_;
  std::string key_;  // the handshake's Sec-WebSocket-Key
  std::string preamble_;
  BufferEventPtr bev_;
  Timer timer_;
  bool finished_ = false;
  int interim_responses_ = 0;  // 1xx heads skipped before the answer
};

}  // namespace wsgate::proxy
