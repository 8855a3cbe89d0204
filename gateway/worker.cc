#include "gateway/worker.h"

#include <fcntl.h>
#include <unistd.h>

#include "conf/address.h"
#include "gateway/exchange/exchange.h"
#include "gateway/h1/h1_connection.h"
#include "gateway/h2/h2_session.h"
#include "metrics/log.h"

namespace wsgate::gateway {

Worker::Worker(int index, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
               std::vector<ListenSocket> sockets,
               std::shared_ptr<const metrics::AccessLog> access_log,
               std::shared_ptr<proxy::UpstreamPools> pools)
    : index_(index),
      generations_(std::move(config), std::move(tls), std::move(pools),
                   static_cast<uint64_t>(index) + 1, &metrics_),
      access_log_(std::move(access_log)),
      idle_upstreams_(&metrics_),
      idle_timeouts_(dispatcher_.base()) {
  make_dns();
  dispatcher_.set_after_reap([this] { maybe_exit(); });
  accept_backoff_ = std::make_unique<AcceptBackoff>(base(), &listeners_, &metrics_);
  proxy_headers_ = std::make_unique<ProxyHeaderReaders>(
      base(), metrics_, index_,
      [this](evutil_socket_t fd, const sockaddr* client, AcceptedOn on, ProxiedConnection p) {
        if (draining_) {
          close(fd);
          return;
        }
        open_connection(fd, client, on, &p);
      });
  for (const auto& s : sockets) listen_on(s, listeners_, listen_sockets_);
}

Worker::~Worker() {
  close_everything();
  listeners_.clear();
}

void Worker::make_dns() {
  // Resolver for upstream names (reads resolv.conf and /etc/hosts); falls back to an
  // empty resolver when there is no resolv.conf, so IP literals still work.
  // With `nameservers` in the config (CONNECT targets are resolved here), those servers
  // and /etc/hosts instead.
  const conf::Config& config = *generations_.config();
  if (config.nameservers.empty())
    dns_.reset(evdns_base_new(base(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (dns_) return;
  dns_.reset(evdns_base_new(base(), 0));
  evdns_base_load_hosts(dns_.get(), nullptr);
  for (const auto& ns : config.nameservers) {
    const std::string text = conf::to_string(ns);
    if (evdns_base_nameserver_ip_add(dns_.get(), text.c_str()) != 0)
      log::warn("cannot use nameserver " + text);
  }
}

void Worker::listen_on(const ListenSocket& socket, std::vector<ListenerPtr>& listeners,
                       std::vector<ListenSocket>& sockets) {
  listeners.emplace_back(
      evconnlistener_new(base(), &Worker::on_accept, this, LEV_OPT_CLOSE_ON_FREE, 0, socket.fd));
  accept_backoff_->watch(listeners.back().get());
  sockets.push_back(socket);
}

void Worker::start() {
  // Whatever is left after the drain deadline is closed on the worker's thread.
  dispatcher_.start([this] { close_everything(); });
}

void Worker::join() {
  dispatcher_.join();
}

void Worker::on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  const ListenSocket* socket = nullptr;
  for (std::size_t i = 0; i < w->listeners_.size(); ++i)
    if (w->listeners_[i].get() == l) socket = &w->listen_sockets_[i];
  if (w->draining_ || socket == nullptr) {
    close(fd);
    return;
  }
  (void)len;
  AcceptedOn on{w->generations_.config(), w->generations_.tls(), socket->listener,
                socket->listener_index};
  // PROXY protocol: the header names the client; until it is read there is no client.
  if (socket->listener->proxy_protocol) {
    w->proxy_headers_->start(fd, addr, std::move(on));
    return;
  }
  w->open_connection(fd, addr, on, nullptr);
}

void Worker::open_connection(evutil_socket_t fd, const sockaddr* client, const AcceptedOn& on,
                             const ProxiedConnection* proxied) {
  ClientLimits::Decision admission = admit_client(client);
  if (admission.close_now) {
    // Twice over a limit: not even a request head is read (its slot goes with it).
    close(fd);
    return;
  }
  auto connection = std::make_unique<H1Connection>(*this, next_connection_id_++, on.config, on.tls,
                                                   *on.listener, on.listener_index, fd, client);
  connection->set_admission(std::move(admission));
  if (proxied != nullptr)
    connection->set_proxied(proxied->proxy_addr, proxied->header.authority, proxied->header.alpn);
  registry_.add(std::move(connection))->start();
}

Exchange* Worker::add_exchange(std::unique_ptr<Exchange> exchange) {
  return registry_.add(std::move(exchange));
}

// The three ways a connection ends: listed no more, destroyed after the loop iteration
// (each is deep in one of its own callbacks right now).
void Worker::exchange_done(Exchange* exchange) {
  if (auto owned = registry_.remove(exchange)) dispatcher_.defer_delete(std::move(owned));
}

void Worker::session_done(H1Connection* connection) {
  if (auto owned = registry_.remove(connection)) dispatcher_.defer_delete(std::move(owned));
}

void Worker::h2_session_done(H2Session* session) {
  if (auto owned = registry_.remove(session)) dispatcher_.defer_delete(std::move(owned));
}

void Worker::retire(std::unique_ptr<proxy::UpstreamConnector> connector) {
  if (connector) dispatcher_.defer_delete(std::move(connector));
}

void Worker::close_everything() {
  if (proxy_headers_) proxy_headers_->close_all();
  registry_.clear();
  dispatcher_.destroy_deferred();
}

void Worker::start_h2(BufferEventPtr client, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                      const conf::Listener& listener, DownstreamFacts facts,
                      ClientLimits::Decision admission) {
  auto session = std::make_unique<H2Session>(*this, std::move(config), std::move(tls), listener,
                                             std::move(client), std::move(facts));
  session->hold_admission(std::move(admission));
  H2Session* raw = registry_.add(std::move(session));
  raw->start();
  if (draining_) raw->drain();
}

void Worker::adopt(Update update) {
  post([this, update = std::move(update)]() mutable { adopt_now(std::move(update)); });
}

void Worker::adopt_now(Update update) {
  if (draining_ || retiring_) {  // not accepting any more: the new sockets are not wanted
    for (const auto& s : update.sockets)
      if (s.fd >= 0) close(s.fd);
    return;
  }
  // Listeners first, while the old config (which the old sockets point into) is current.
  std::vector<ListenerPtr> listeners;
  std::vector<ListenSocket> sockets;
  for (const ListenSocket& s : update.sockets) {
    if (s.fd >= 0) {
      listen_on(s, listeners, sockets);
      continue;
    }
    // Same address: the very same sockets (and their accept queues; a worker has several
    // for one address after a binary upgrade from more workers), now for the new listener.
    for (std::size_t i = 0; i < listen_sockets_.size(); ++i) {
      const conf::HostPort& had = listen_sockets_[i].listener->address;
      if (!listeners_[i] || had.host != s.listener->address.host ||
          had.port != s.listener->address.port)
        continue;
      listeners.push_back(std::move(listeners_[i]));
      sockets.push_back({listen_sockets_[i].fd, s.listener, s.listener_index});
    }
  }
  // What is left of the old set are removed listeners: freeing them closes their sockets;
  // the connections they accepted are sessions of their own and go on.
  listeners_.swap(listeners);
  listen_sockets_.swap(sockets);
  listeners.clear();
  access_log_ = std::move(update.access_log);
  client_limits_ = std::move(update.client_limits);
  generations_.use(std::move(update.config), std::move(update.tls), std::move(update.pools));
}

void Worker::record_tls_failure(const std::string& listener, const std::string& reason,
                                const std::string& client) {
  metrics_.tls_failure(listener, reason);
  // A flood of bad handshakes must not flood the log (tls/failure_log_limiter.h).
  const tls::FailureLogLimiter::Verdict v = tls_log_.on_failure(time(nullptr));
  report_tls_failures_not_logged(v.report_count);
  if (v.log_this) {
    log::warn("TLS handshake with " + client + " failed: " + reason);
    return;
  }
  // The count is logged when the next failure comes in a later second, or after a second
  // at the latest when none does.
  if (!tls_log_flush_)
    tls_log_flush_ = std::make_unique<Timer>(base(), [this] { flush_tls_failure_summary(); });
  if (!tls_log_flush_->pending()) tls_log_flush_->arm_ms(1000);
}

void Worker::flush_tls_failure_summary() {
  report_tls_failures_not_logged(tls_log_.take_suppressed());
}

void Worker::report_tls_failures_not_logged(uint64_t count) {
  if (count == 0) return;
  log::warn("worker " + std::to_string(index_) + ": " + std::to_string(count) +
            " more TLS handshake failure(s) not logged");
}

void Worker::begin_drain() {
  post([this] { drain_now(); });
}

void Worker::drain_now() {
  if (draining_) return;
  draining_ = true;
  listeners_.clear();           // stop accepting; the kernel sends new connections elsewhere
  proxy_headers_->close_all();  // no request was read from these yet
  const conf::Config& config = *generations_.config();
  drain_deadline_ = std::make_unique<Timer>(base(), [this] { on_drain_deadline(); });
  drain_deadline_->arm_ms(config.drain_timeout.count());
  drain_sessions(config.drain_spread);
  // HTTP/2 connections get GOAWAY; their streams' exchanges were drained above.
  for (H2Session* s : registry_.h2_sessions())
    if (registry_.contains(s)) s->drain();
  maybe_exit();
}

void Worker::retire() {
  post([this] { retire_now(); });
}

void Worker::retire_now() {
  if (draining_ || retiring_) return;
  retiring_ = true;
  // The new process holds the same sockets: closing this process's descriptors leaves
  // them open, with whatever connections are queued in them for the new process.
  listeners_.clear();
  listen_sockets_.clear();
  for (H1Connection* c : registry_.connections_reading_head())
    if (registry_.contains(c)) c->retire();
  // RFC 9113 6.8: GOAWAY, the open streams (WebSockets among them) go on.
  for (H2Session* s : registry_.h2_sessions())
    if (registry_.contains(s)) s->drain();
  log::info("worker " + std::to_string(index_) + ": handed over, " +
            std::to_string(registry_.size()) + " connection(s) run on");
  maybe_exit();
}

std::vector<std::pair<conf::HostPort, int>> Worker::duplicate_listening_sockets() const {
  std::vector<std::pair<conf::HostPort, int>> out;
  for (std::size_t i = 0; i < listen_sockets_.size(); ++i) {
    if (!listeners_[i]) continue;
    const int copy = fcntl(listen_sockets_[i].fd, F_DUPFD_CLOEXEC, 0);
    if (copy >= 0) out.emplace_back(listen_sockets_[i].listener->address, copy);
  }
  return out;
}

void Worker::on_drain_deadline() {
  if (connection_count() != 0) {
    log::warn("worker " + std::to_string(index_) + ": drain_timeout reached, closing " +
              std::to_string(connection_count()) + " connection(s)");
  }
  dispatcher_.stop();
}

void Worker::maybe_exit() {
  if ((draining_ || retiring_) && registry_.empty() &&
      (!proxy_headers_ || proxy_headers_->size() == 0) && dispatcher_.nothing_deferred())
    dispatcher_.stop();
}

}  // namespace wsgate::gateway
