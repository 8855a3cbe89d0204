// The PROXY protocol step of accept, on listeners with proxy_protocol = true: a
// connection from outside proxy_protocol_from is closed at once; any other one has its
// PROXY header (v1 or v2, proxy/codec/proxy_protocol.h) read off the socket before TLS
// and before any HTTP byte, within the listener's handshake_timeout. The bytes behind
// the header stay in the socket for the TLS handshake or the request head. A missing,
// malformed, late or cut header closes the connection; each such close is counted
// (wsgate_proxy_protocol_rejections_total) and logged at a bounded rate.
//
// One ProxyHeaderReaders per worker, on the worker's thread; it owns the sockets whose
// header is being read, and hands each on, with the address the header names, to the
// callback given at construction.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "metrics/worker_metrics.h"
#include "proxy/codec/proxy_protocol.h"
#include "proxy/libevent_ptr.h"
#include "tls/failure_log_limiter.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

// The listener a socket was accepted on, with the config generation it belongs to (kept
// alive while the header is read, whatever a reload publishes meanwhile).
struct AcceptedOn {
  conf::ConfigPtr config;
  tls::TlsSnapshotPtr tls;
  const conf::Listener* listener = nullptr;  // in *config
  std::size_t listener_index = 0;            // in Config::listeners (and TlsSnapshot::listeners)
};

// What the PROXY header said, beyond the client's address.
struct ProxiedConnection {
  std::string proxy_addr;  // the balancer's own "ip:port" (the TCP peer)
  proxy_protocol::Header header;
};

class ProxyHeaderReaders {
 public:
  // `client`: the header's source address, or the TCP peer for LOCAL / UNKNOWN headers.
  using Ready = std::function<void(evutil_socket_t fd, const sockaddr* client, AcceptedOn on,
                                   ProxiedConnection proxied)>;

  ProxyHeaderReaders(event_base* base, metrics::WorkerMetrics& metrics, int worker, Ready ready);
  ~ProxyHeaderReaders();
  ProxyHeaderReaders(const ProxyHeaderReaders&) = delete;
  ProxyHeaderReaders& operator=(const ProxyHeaderReaders&) = delete;

  // Takes `fd`, accepted from `peer` on a proxy_protocol listener.
  void start(evutil_socket_t fd, const sockaddr* peer, AcceptedOn on);
  // Closes every socket whose header is still awaited (drain, shutdown).
  void close_all();
  std::size_t size() const { return pending_.size(); }

 private:
  class Pending;
  static void on_event(evutil_socket_t fd, short what, void* arg);
  void reject(const std::string& reason_label, const std::string& peer, const std::string& why);
  void report_not_logged(uint64_t count);

  event_base* base_;
  metrics::WorkerMetrics& metrics_;
  const int worker_;
  Ready ready_;
  std::unordered_map<Pending*, std::unique_ptr<Pending>> pending_;
  tls::FailureLogLimiter log_limiter_;  // the same bound as TLS failures: 10 lines a second
  Timer log_flush_;
};

}  // namespace wsgate::gateway
