// Opens the upstream side of one CONNECT tunnel: resolve the target (asynchronously on
// the worker's evdns base, within resolve_timeout), keep only the addresses the
// allow-list accepts (proxy/connect/connect_acl.h: the check runs on every resolved address, so
// a name that resolves to a denied address is denied), then TCP-connect to them in
// order, each within connect_timeout, until one answers.
//
// Outcomes: a connected bufferevent; or 403 (denied, with the reason), 502 (cannot
// resolve, refused/unreachable on every allowed address), 504 (DNS or connect timeout).
//
// Ownership: the owner keeps the dialer alive until `done` has run (or cancel()) and
// destroys it later, never from inside `done`. `settings` must outlive the dialer.
#pragma once

#include <event2/dns.h>
#include <netinet/in.h>

#include <functional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/codec/request_head.h"
#include "proxy/connect/connect_acl.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/dns_lookup.h"

namespace wsgate::proxy {

struct DialResult {
  BufferEventPtr connection;  // set on success (TCP connected, no callbacks installed)
  http::Refusal refusal;      // on failure: 403, 502 or 504, one line for the client and log
  std::string address = "-";  // "ip:port" connected to (or the last one tried)
};

class ConnectDialer {
 public:
  using Done = std::function<void(DialResult&&)>;

  ConnectDialer(event_base* base, evdns_base* dns, const conf::Connect& settings,
                connect::Authority target, Done done);
  ~ConnectDialer();
  ConnectDialer(const ConnectDialer&) = delete;
  ConnectDialer& operator=(const ConnectDialer&) = delete;

  // May call `done` before returning (an IP literal that is denied, a name found in
  // /etc/hosts).
  void start();
  // Stops everything in flight; `done` will not run.
  void cancel();

 private:
  enum class State { Idle, Resolving, Connecting, Done };

  void on_resolved(int err, const evutil_addrinfo* res);
  static void on_event(bufferevent* bev, short what, void* self);
  void use_addresses(const std::vector<sockaddr_storage>& candidates);
  void try_next();
  void on_timeout();
  void fail(int status, std::string reason);

  event_base* base_;
  evdns_base* dns_;
  const conf::Connect& settings_;
  connect::Authority target_;
  Done done_;
  State state_ = State::Idle;
  DnsLookup lookup_;                         // while Resolving
  std::vector<sockaddr_storage> addresses_;  // allowed, in resolver order
  std::size_t next_ = 0;
  std::string current_;  // "ip:port" of the attempt in progress
  BufferEventPtr bev_;
  Timer timer_;
  int last_status_ = 502;
  std::string last_reason_;
};

}  // namespace wsgate::proxy
