#include "gateway/server.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/listen_socket.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "proxy/health_checker.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream_resolver.h"

namespace wsgate::gateway {

Server::Server(conf::ConfigPtr config)
    : config_(std::move(config)), pools_(std::make_shared<proxy::UpstreamPools>(*config_)) {}

Server::~Server() = default;

namespace {

void on_stop_signal(evutil_socket_t sig, short /*what*/, void* arg) {
  auto* base = static_cast<event_base*>(arg);
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": draining connections");
  event_base_loopexit(base, nullptr);
}

}  // namespace

int Server::run() {
  signal(SIGPIPE, SIG_IGN);
  if (!access_log_.open(config_->access_log)) {
    log::error("cannot open access_log " + config_->access_log + ": " + std::strerror(errno));
    return 1;
  }
  // All sockets first, on this thread, so a bad address fails the start with a clear
  // message before any worker runs.
  std::vector<std::vector<ListenSocket>> per_worker(config_->workers);
  for (unsigned w = 0; w < config_->workers; ++w) {
    for (const auto& listener : config_->listeners) {
      std::string error;
      const int fd = open_listen_socket(listener.address, error);
      if (fd < 0) {
        log::error(error);
        for (auto& sockets : per_worker)
          for (auto& s : sockets) close(s.fd);
        return 1;
      }
      per_worker[w].push_back({fd, &listener});
    }
  }
  for (unsigned w = 0; w < config_->workers; ++w) {
    workers_.push_back(std::make_unique<Worker>(static_cast<int>(w), config_,
                                                std::move(per_worker[w]), access_log_, pools_));
  }

  EventBasePtr base(event_base_new());
  EventPtr sigterm(evsignal_new(base.get(), SIGTERM, &on_stop_signal, base.get()));
  EventPtr sigint(evsignal_new(base.get(), SIGINT, &on_stop_signal, base.get()));
  event_add(sigterm.get(), nullptr);
  event_add(sigint.get(), nullptr);

  // Host-name servers are re-resolved and health checks run on this thread's loop;
  // workers read the results from the pools.
  proxy::UpstreamResolver resolver(base.get(), *config_, *pools_);
  resolver.start();
  proxy::HealthChecker health_checker(base.get(), *config_, *pools_);
  health_checker.start();

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
