#include "gateway/worker.h"

#include <signal.h>
#include <sys/eventfd.h>
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
    : index_(index), access_log_(std::move(access_log)) {
  use_generation(std::move(config), std::move(tls), std::move(pools));
  // The epoll changelist folds the add/remove pairs of one loop turn into at most one
  // epoll_ctl per fd (we never dup() sockets, the one case it cannot handle).
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_.reset(event_base_new_with_config(cfg));
  event_config_free(cfg);
  // Resolver for upstream names (reads resolv.conf and /etc/hosts); falls back to an
  // empty resolver when there is no resolv.conf, so IP literals still work.
  // With `nameservers` in the config (CONNECT targets are resolved here), those servers
  // and /etc/hosts instead.
  if (config_->nameservers.empty())
    dns_.reset(evdns_base_new(base_.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns_) {
    dns_.reset(evdns_base_new(base_.get(), 0));
    evdns_base_load_hosts(dns_.get(), nullptr);
    for (const auto& ns : config_->nameservers) {
      const std::string text = conf::to_string(ns);
      if (evdns_base_nameserver_ip_add(dns_.get(), text.c_str()) != 0)
        log::warn("cannot use nameserver " + text);
    }
  }
  reap_event_.reset(event_new(base_.get(), -1, 0, &Worker::on_reap, this));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_event_.reset(
      event_new(base_.get(), wake_fd_, EV_READ | EV_PERSIST, &Worker::on_wakeup, this));
  event_add(wake_event_.get(), nullptr);
  accept_backoff_ = std::make_unique<AcceptBackoff>(base_.get(), &listeners_, &metrics_);
  proxy_headers_ = std::make_unique<ProxyHeaderReaders>(
      base_.get(), metrics_, index_,
      [this](evutil_socket_t fd, const sockaddr* client, AcceptedOn on, ProxiedConnection p) {
        if (draining_) {
          close(fd);
          return;
        }
        open_connection(fd, client, on, &p);
      });
  for (const auto& s : sockets) {
    listeners_.emplace_back(
        evconnlistener_new(base_.get(), &Worker::on_accept, this, LEV_OPT_CLOSE_ON_FREE, 0, s.fd));
    accept_backoff_->watch(listeners_.back().get());
    listen_sockets_.push_back(s);
  }
}

Worker::~Worker() {
  close_everything();
  listeners_.clear();
  wake_event_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  // Signals belong to the main thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  event_base_dispatch(base_.get());
  // Whatever is left after the drain deadline is closed here, on this thread.
  close_everything();
  finished_.store(true, std::memory_order_release);
}

void Worker::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    mailbox_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void Worker::on_wakeup(evutil_socket_t fd, short /*what*/, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  uint64_t count = 0;
  ssize_t ignored = read(fd, &count, sizeof(count));
  (void)ignored;
  std::vector<std::function<void()>> jobs;
  {
    std::lock_guard<std::mutex> lock(w->mailbox_mutex_);
    jobs.swap(w->mailbox_);
  }
  for (auto& job : jobs) job();
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
  AcceptedOn on{w->config_, w->tls_, socket->listener, socket->listener_index};
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
  H1Connection* raw = connection.get();
  sessions_.emplace(raw, std::move(connection));
  raw->start();
}

Exchange* Worker::add_exchange(std::unique_ptr<Exchange> exchange) {
  Exchange* raw = exchange.get();
  exchanges_.emplace(raw, std::move(exchange));
  return raw;
}

void Worker::exchange_done(Exchange* exchange) {
  auto it = exchanges_.find(exchange);
  if (it == exchanges_.end()) return;
  // Deferred deletion: the exchange is deep in one of its own callbacks right now.
  defer_delete(std::move(it->second));
  exchanges_.erase(it);
}

void Worker::defer_delete(std::shared_ptr<void> object) {
  deferred_.push_back(std::move(object));
  event_active(reap_event_.get(), EV_TIMEOUT, 0);
}

void Worker::close_everything() {
  if (proxy_headers_) proxy_headers_->close_all();
  // Connections first (they detach from their exchanges), then the exchanges, whose
  // relays close both sockets.
  h2_sessions_.clear();
  sessions_.clear();
  exchanges_.clear();
  // Destructors may defer more deletions: empty the list until it stays empty.
  while (!deferred_.empty()) {
    std::vector<std::shared_ptr<void>> due;
    due.swap(deferred_);
  }
}

void Worker::start_h2(BufferEventPtr client, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                      const conf::Listener& listener, DownstreamFacts facts,
                      ClientLimits::Decision admission) {
  auto session = std::make_unique<H2Session>(*this, std::move(config), std::move(tls), listener,
                                             std::move(client), std::move(facts));
  session->hold_admission(std::move(admission));
  H2Session* raw = session.get();
  h2_sessions_.emplace(raw, std::move(session));
  raw->start();
  if (draining_) raw->drain();
}

void Worker::h2_session_done(H2Session* session) {
  auto it = h2_sessions_.find(session);
  if (it == h2_sessions_.end()) return;
  defer_delete(std::move(it->second));
  h2_sessions_.erase(it);
}

void Worker::session_done(H1Connection* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  // Deferred deletion: the session may be deep in one of its own callbacks right now.
  defer_delete(std::move(it->second));
  sessions_.erase(it);
}

void Worker::retire(std::unique_ptr<proxy::UpstreamConnector> connector) {
  if (!connector) return;
  defer_delete(std::move(connector));
}

void Worker::on_reap(evutil_socket_t /*fd*/, short /*what*/, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  // Destructors may defer more deletions: those wait for the next reap.
  std::vector<std::shared_ptr<void>> due;
  due.swap(w->deferred_);
  due.clear();
  w->maybe_exit();
}

void Worker::use_generation(conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                            std::shared_ptr<proxy::UpstreamPools> pools) {
  std::erase_if(past_generations_, [](const auto& g) { return g.expired(); });
  if (generation_) past_generations_.push_back(generation_);
  generation_ = std::make_shared<Generation>(std::move(config), std::move(tls), std::move(pools),
                                             static_cast<uint64_t>(index_) + 1);
  config_ = conf::ConfigPtr(generation_, generation_->config.get());
  tls_ = generation_->tls;
}

proxy::Balancers& Worker::balancers_for(const conf::Config& config) {
  if (&config == generation_->config.get()) return generation_->balancers;
  for (const auto& weak : past_generations_) {
    // The caller's ConfigPtr keeps its generation alive: the reference stays valid.
    if (auto g = weak.lock(); g && g->config.get() == &config) return g->balancers;
  }
  log::error("worker " + std::to_string(index_) + ": a session's config has no generation");
  return no_balancers_;
}

void Worker::adopt(Update update) {
  post([this, update = std::move(update)]() mutable { adopt_now(std::move(update)); });
}

void Worker::adopt_now(Update update) {
  if (draining_) {  // not accepting any more: the new sockets are not wanted
    for (const auto& s : update.sockets)
      if (s.fd >= 0) close(s.fd);
    return;
  }
  // Listeners first, while the old config (which the old sockets point into) is current.
  std::vector<ListenerPtr> listeners;
  std::vector<ListenSocket> sockets;
  for (const ListenSocket& s : update.sockets) {
    if (s.fd >= 0) {
      listeners.emplace_back(evconnlistener_new(base_.get(), &Worker::on_accept, this,
                                                LEV_OPT_CLOSE_ON_FREE, 0, s.fd));
      accept_backoff_->watch(listeners.back().get());
      sockets.push_back(s);
      continue;
    }
    // Same address: the very same socket (and its accept queue), now for the new listener.
    for (std::size_t i = 0; i < listen_sockets_.size(); ++i) {
      const conf::HostPort& had = listen_sockets_[i].listener->address;
      if (!listeners_[i] || had.host != s.listener->address.host ||
          had.port != s.listener->address.port)
        continue;
      listeners.push_back(std::move(listeners_[i]));
      sockets.push_back({listen_sockets_[i].fd, s.listener, s.listener_index});
      break;
    }
  }
  // What is left of the old set are removed listeners: freeing them closes their sockets;
  // the connections they accepted are sessions of their own and go on.
  listeners_.swap(listeners);
  listen_sockets_.swap(sockets);
  listeners.clear();
  access_log_ = std::move(update.access_log);
  client_limits_ = std::move(update.client_limits);
  use_generation(std::move(update.config), std::move(update.tls), std::move(update.pools));
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
    tls_log_flush_ = std::make_unique<Timer>(base_.get(), [this] { flush_tls_failure_summary(); });
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
  drain_deadline_ = std::make_unique<Timer>(base_.get(), [this] { on_drain_deadline(); });
  drain_deadline_->arm_ms(config_->drain_timeout.count());
  drain_sessions(config_->drain_spread);
  // HTTP/2 connections get GOAWAY; their streams' exchanges were drained above.
  std::vector<H2Session*> live_h2;
  for (auto& [raw, owned] : h2_sessions_) live_h2.push_back(raw);
  for (H2Session* s : live_h2)
    if (h2_sessions_.count(s) != 0) s->drain();
  maybe_exit();
}

void Worker::on_drain_deadline() {
  if (connection_count() != 0) {
    log::warn("worker " + std::to_string(index_) + ": drain_timeout reached, closing " +
              std::to_string(connection_count()) + " connection(s)");
  }
  event_base_loopexit(base_.get(), nullptr);
}

void Worker::maybe_exit() {
  if (draining_ && sessions_.empty() && h2_sessions_.empty() && exchanges_.empty() &&
      deferred_.empty())
    event_base_loopexit(base_.get(), nullptr);
}

}  // namespace wsgate::gateway
