#include "gateway/dispatcher.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace wsgate::gateway {

Dispatcher::Dispatcher() {
  // The epoll changelist folds the add/remove pairs of one loop turn into at most one
  // epoll_ctl per fd (we never dup() sockets, the one case it cannot handle).
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_.reset(event_base_new_with_config(cfg));
  event_config_free(cfg);
  reap_event_.reset(event_new(base_.get(), -1, 0, &Dispatcher::on_reap, this));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_event_.reset(
      event_new(base_.get(), wake_fd_, EV_READ | EV_PERSIST, &Dispatcher::on_wakeup, this));
  event_add(wake_event_.get(), nullptr);
}

Dispatcher::~Dispatcher() {
  join();
  destroy_deferred();
  wake_event_.reset();
  reap_event_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Dispatcher::start(std::function<void()> after_loop) {
  thread_ = std::thread([this, after_loop = std::move(after_loop)] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    event_base_dispatch(base_.get());
    if (after_loop) after_loop();
    finished_.store(true, std::memory_order_release);
  });
}

void Dispatcher::join() {
  if (thread_.joinable()) thread_.join();
}

void Dispatcher::stop() {
  event_base_loopexit(base_.get(), nullptr);
}

void Dispatcher::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    mailbox_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void Dispatcher::on_wakeup(evutil_socket_t fd, short /*what*/, void* arg) {
  auto* d = static_cast<Dispatcher*>(arg);
  uint64_t count = 0;
  ssize_t ignored = read(fd, &count, sizeof(count));
  (void)ignored;
  std::vector<std::function<void()>> jobs;
  {
    std::lock_guard<std::mutex> lock(d->mailbox_mutex_);
    jobs.swap(d->mailbox_);
  }
  for (auto& job : jobs) job();
}

void Dispatcher::schedule_reap() {
  event_active(reap_event_.get(), EV_TIMEOUT, 0);
}

void Dispatcher::reap_once() {
  // Destructors may defer more deletions: those land in deferred_ and wait.
  reaping_.swap(deferred_);
  for (const Deferred& d : reaping_) d.destroy(d.object);
  reaping_.clear();
}

void Dispatcher::on_reap(evutil_socket_t /*fd*/, short /*what*/, void* arg) {
  auto* d = static_cast<Dispatcher*>(arg);
  d->reap_once();
  if (d->after_reap_) d->after_reap_();
}

void Dispatcher::destroy_deferred() {
  while (!deferred_.empty()) reap_once();
}

}  // namespace wsgate::gateway
