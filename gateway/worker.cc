#include "gateway/worker.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gateway/h1_session.h"
#include "metrics/log.h"

namespace wsgate::gateway {

Worker::Worker(int index, conf::ConfigPtr config, std::vector<ListenSocket> sockets,
               const metrics::AccessLog& access_log, std::shared_ptr<proxy::UpstreamPools> pools)
    : index_(index),
      config_(std::move(config)),
      access_log_(access_log),
      balancers_(std::move(pools), static_cast<uint64_t>(index) + 1) {
  base_.reset(event_base_new());
  // Resolver for upstream names (reads resolv.conf and /etc/hosts); falls back to an
  // empty resolver when there is no resolv.conf, so IP literals still work.
  dns_.reset(evdns_base_new(base_.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns_) dns_.reset(evdns_base_new(base_.get(), 0));
  reap_event_.reset(event_new(base_.get(), -1, 0, &Worker::on_reap, this));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_event_.reset(
      event_new(base_.get(), wake_fd_, EV_READ | EV_PERSIST, &Worker::on_wakeup, this));
  event_add(wake_event_.get(), nullptr);
  for (const auto& s : sockets) {
    listeners_.emplace_back(
        evconnlistener_new(base_.get(), &Worker::on_accept, this, LEV_OPT_CLOSE_ON_FREE, 0, s.fd));
    listener_configs_.push_back(s.listener);
  }
}

Worker::~Worker() {
  sessions_.clear();
  graveyard_.clear();
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
  sessions_.clear();
  graveyard_.clear();
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
  const conf::Listener* listener = nullptr;
  for (std::size_t i = 0; i < w->listeners_.size(); ++i)
    if (w->listeners_[i].get() == l) listener = w->listener_configs_[i];
  if (w->draining_ || listener == nullptr) {
    close(fd);
    return;
  }
  auto session = std::make_unique<H1Session>(*w, w->next_connection_id_++, w->config_, *listener,
                                             fd, addr, len);
  H1Session* raw = session.get();
  w->sessions_.emplace(raw, std::move(session));
  raw->start();
}

void Worker::session_done(H1Session* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  // Deferred deletion: the session may be deep in one of its own callbacks right now.
  graveyard_.push_back(std::move(it->second));
  sessions_.erase(it);
  event_active(reap_event_.get(), EV_TIMEOUT, 0);
}

void Worker::on_reap(evutil_socket_t /*fd*/, short /*what*/, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  w->graveyard_.clear();
  w->maybe_exit();
}

void Worker::begin_drain() {
  post([this] { drain_now(); });
}

void Worker::drain_now() {
  if (draining_) return;
  draining_ = true;
  listeners_.clear();  // stop accepting; the kernel sends new connections elsewhere
  drain_deadline_ = std::make_unique<Timer>(base_.get(), [this] { on_drain_deadline(); });
  drain_deadline_->arm_ms(config_->drain_timeout.count());
  // Copy: drain() may finish a session, which moves it out of the table.
  std::vector<H1Session*> live;
  live.reserve(sessions_.size());
  for (auto& [raw, owned] : sessions_) live.push_back(raw);
  for (H1Session* s : live)
    if (sessions_.count(s) != 0) s->drain();
  maybe_exit();
}

void Worker::on_drain_deadline() {
  if (!sessions_.empty()) {
    log::warn("worker " + std::to_string(index_) + ": drain_timeout reached, closing " +
              std::to_string(sessions_.size()) + " connection(s)");
  }
  event_base_loopexit(base_.get(), nullptr);
}

void Worker::maybe_exit() {
  if (draining_ && sessions_.empty() && graveyard_.empty())
    event_base_loopexit(base_.get(), nullptr);
}

}  // namespace wsgate::gateway
