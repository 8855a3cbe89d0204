#include "gateway/server.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/listen_socket.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

Server::Server(conf::ConfigPtr config) : config_(std::move(config)) {}

Server::~Server() = default;

namespace {

void on_stop_signal(evutil_socket_t sig, short /*what*/, void* arg) {
  auto* base = static_cast<event_base*>(arg);
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": draining connections");
  event_base_loopexit(base, nullptr);
}

void on_reload_signal(evutil_socket_t /*sig*/, short /*what*/, void* arg) {
  static_cast<Server*>(arg)->reload_certificates();
}

}  // namespace

void Server::reload_certificates() {
  std::string error;
  tls::TlsSnapshotPtr fresh = tls::build_tls_snapshot(*config_, error);
  if (!fresh) {
    log::error("SIGHUP: certificates not reloaded, the current ones stay in use: " + error);
    return;
  }
  tls_ = fresh;
  for (auto& w : workers_) w->replace_tls(fresh);
  log::info("SIGHUP: certificates reloaded; new handshakes use them");
}

int Server::run() {
  signal(SIGPIPE, SIG_IGN);
  // Signal handlers before any socket listens: a client (or a test) that sees the port
  // open may send SIGTERM at once, and it must drain, not kill. Until the loop runs,
  // libevent records the signal and delivers it then.
  EventBasePtr base(event_base_new());
  EventPtr sigterm(evsignal_new(base.get(), SIGTERM, &on_stop_signal, base.get()));
  EventPtr sigint(evsignal_new(base.get(), SIGINT, &on_stop_signal, base.get()));
  event_add(sigterm.get(), nullptr);
  event_add(sigint.get(), nullptr);
  EventPtr sighup(evsignal_new(base.get(), SIGHUP, &on_reload_signal, this));
  event_add(sighup.get(), nullptr);
  if (!access_log_.open(config_->access_log)) {
    log::error("cannot open access_log " + config_->access_log + ": " + std::strerror(errno));
    return 1;
  }
  std::string tls_error;
  tls_ = tls::build_tls_snapshot(*config_, tls_error);
  if (!tls_) {
    log::error(tls_error);
    return 1;
  }
  // All sockets first, on this thread, so a bad address fails the start with a clear
  // message before any worker runs.
  std::vector<std::vector<ListenSocket>> per_worker(config_->workers);
  for (unsigned w = 0; w < config_->workers; ++w) {
    for (std::size_t i = 0; i < config_->listeners.size(); ++i) {
      const conf::Listener& listener = config_->listeners[i];
      std::string error;
      const int fd = open_listen_socket(listener.address, error);
      if (fd < 0) {
        log::error(error);
        for (auto& sockets : per_worker)
          for (auto& s : sockets) close(s.fd);
        return 1;
      }
      per_worker[w].push_back({fd, &listener, i});
    }
  }
  for (unsigned w = 0; w < config_->workers; ++w) {
    workers_.push_back(std::make_unique<Worker>(static_cast<int>(w), config_, tls_,
                                                std::move(per_worker[w]), access_log_));
  }


  for (auto& w : workers_) w->start();
  std::string where;
  for (const auto& l : config_->listeners)
    where += (where.empty() ? "" : ", ") + to_string(l.address);
  log::info("wsgate listening on " + where + " with " + std::to_string(config_->workers) +
            " worker(s), config " + config_->source_file);

  event_base_dispatch(base.get());

  for (auto& w : workers_) w->begin_drain();
  for (auto& w : workers_) w->join();
  workers_.clear();
  log::info("drained, exiting");
  return 0;
}

}  // namespace wsgate::gateway
