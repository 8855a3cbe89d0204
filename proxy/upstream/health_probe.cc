#include "proxy/upstream/health_probe.h"

#include <event2/buffer.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/codec/http1_parser.h"
#include "proxy/codec/websocket_key.h"
#include "proxy/codec/websocket_upgrade_check.h"
#include "proxy/upstream/response_head_reader.h"

namespace wsgate::proxy {

bool http_check_healthy(const conf::HealthCheck& check, int status) {
  if (check.expect_status.empty()) return status >= 200 && status <= 399;
  return std::find(check.expect_status.begin(), check.expect_status.end(), status) !=
         check.expect_status.end();
}

HealthProbe::HealthProbe(event_base* base, evdns_base* dns, const conf::UpstreamServer& server,
                         const conf::HealthCheck& check, Done done)
    : server_(server),
      check_(check),
      base_(base),
      dns_(dns),
      done_(std::move(done)),
      timer_(base, [this] { finish(false, "no answer within the timeout"); }) {}

void HealthProbe::start() {
  bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  bufferevent_setcb(bev_.get(), &HealthProbe::on_read, nullptr, &HealthProbe::on_event, this);
  timer_.arm_ms(check_.timeout.count());
  if (bufferevent_socket_connect_hostname(bev_.get(), dns_, AF_UNSPEC, server_.host.c_str(),
                                          server_.port) != 0)
    finish(false,
           std::string("cannot connect: ") + evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void HealthProbe::on_event(bufferevent* bev, short what, void* self) {
  auto* p = static_cast<HealthProbe*>(self);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    p->on_connected();
    return;
  }
  if ((what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) == 0) return;
  const int dns_err = bufferevent_socket_get_dns_error(bev);
  if (dns_err != 0) {
    p->finish(false, std::string("cannot resolve: ") + evutil_gai_strerror(dns_err));
  } else if ((what & BEV_EVENT_EOF) != 0) {
    p->finish(false, "closed before answering");
  } else {
    p->finish(false, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
  }
}

void HealthProbe::on_connected() {
  if (check_.type == conf::HealthCheck::Type::Tcp) {
    finish(true, "connected");
    return;
  }
  bufferevent_write(bev_.get(), preamble_.data(), preamble_.size());
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  if (check_.type == conf::HealthCheck::Type::Http) {
    // RFC 9112 3.2: Host is required; the connection ends with the answer.
    const std::string request = "GET " + check_.path + " HTTP/1.1\r\nHost: " + server_.text +
                                "\r\nConnection: close\r\n"
                                "User-Agent: wsgate-health-check\r\n\r\n";
    bufferevent_write(bev_.get(), request.data(), request.size());
    return;
  }
  // RFC 6455 4.1: a complete client opening handshake, as a browser would send it.
  key_ = ws::generate_key();
  const std::string request = "GET " + check_.path + " HTTP/1.1\r\nHost: " + server_.text +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: " +
                              key_ +
                              "\r\nSec-WebSocket-Version: 13\r\n"
                              "User-Agent: wsgate-health-check\r\n\r\n";
  bufferevent_write(bev_.get(), request.data(), request.size());
}

void HealthProbe::on_read(bufferevent* /*bev*/, void* self) {
  static_cast<HealthProbe*>(self)->on_response();
}

void HealthProbe::on_response() {
  if (finished_) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  const http1::Limits limits{16 * 1024, 100};
  http1::ResponseHead head;
  // The same reading as a client's exchange: interim 1xx responses are skipped.
  const auto parsed = read_final_response_head(in, limits, head, interim_responses_);
  if (parsed.state == http1::ParseState::Incomplete) return;
  if (parsed.state == http1::ParseState::Error) {
    finish(false, "invalid response: " + parsed.error_reason);
    return;
  }
  if (check_.type == conf::HealthCheck::Type::Http) {
    const std::string answered = "answered " + std::to_string(head.status);
    finish(http_check_healthy(check_, head.status), answered);
    return;
  }
  if (std::optional<std::string> why = check_upgrade_response(head, key_)) {
    finish(false, std::move(*why));
    return;
  }
  finish(true, "answered 101");
}

void HealthProbe::finish(bool ok, std::string detail) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  // Closing the connection ends the probe at once; the upstream sees the TCP connection
  // end (for "websocket", right after its 101). Freeing a bufferevent from inside its
  // own callback is safe: libevent reference-counts it.
  bev_.reset();
  done_(ok, std::move(detail));
}

}  // namespace wsgate::proxy
