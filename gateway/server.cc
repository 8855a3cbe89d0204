#include "gateway/server.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/admin_source.h"
#include "gateway/inherited_sockets.h"
#include "gateway/listen_socket.h"
#include "gateway/takeover_client.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "proxy/auth/jwks_fetcher.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

void apply_log_settings(const conf::Config& config) {
  log::Level level = log::Level::Info;
  switch (config.log_level) {
    case conf::LogLevel::Debug:
      level = log::Level::Debug;
      break;
    case conf::LogLevel::Info:
      level = log::Level::Info;
      break;
    case conf::LogLevel::Warn:
      level = log::Level::Warn;
      break;
    case conf::LogLevel::Error:
      level = log::Level::Error;
      break;
  }
  log::configure(
      level, config.log_format == conf::LogFormat::Json ? log::Format::Json : log::Format::Text);
}

Server::Server(conf::ConfigPtr config, std::string takeover)
    : config_(std::move(config)),
      access_log_(std::make_shared<metrics::AccessLog>()),
      pools_(std::make_shared<proxy::UpstreamPools>(*config_)),
      takeover_(std::move(takeover)) {}

Server::~Server() = default;

void Server::on_stop_signal(evutil_socket_t sig, short /*what*/, void* self) {
  auto* server = static_cast<Server*>(self);
  if (server->retiring_ && !server->draining_) {
    // Handed over: no listener, no /ready to turn; the drain starts now.
    log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
              " after the handover: draining connections");
    server->draining_ = true;
    server->start_worker_drain();
    return;
  }
  if (server->draining_) {
    // A second signal during drain_delay: no more waiting.
    if (server->drain_delay_ && server->drain_delay_->pending()) {
      server->drain_delay_->cancel();
      log::info("second stop signal: draining now");
      server->start_worker_drain();
    }
    return;
  }
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": draining connections");
  server->begin_drain();
}

void Server::on_reopen_signal(evutil_socket_t /*sig*/, short /*what*/, void* self) {
  auto* server = static_cast<Server*>(self);
  if (server->access_log_->reopen()) {
    log::info("received SIGUSR1: access log reopened");
  } else {
    log::error("received SIGUSR1: cannot reopen access_log " + server->config_->access_log + ": " +
               std::strerror(errno));
  }
}

void Server::on_reload_signal(evutil_socket_t /*sig*/, short /*what*/, void* self) {
  static_cast<Server*>(self)->reload_and_notify("SIGHUP");
}

metrics::ReloadResult Server::reload_and_notify(std::string_view trigger) {
  if (!systemd_.active()) return reload(trigger);
  systemd_.reloading();
  metrics::ReloadResult result = reload(trigger);
  // READY=1 either way: a rejected reload leaves the old config running (the unit's
  // ExecReload checks the file first, so systemctl reload reports a bad one as failed).
  systemd_.ready(std::string(result.ok ? "reloaded: " : "reload rejected, running config kept: ") +
                 result.message + "; " + status_text());
  return result;
}

std::string Server::status_text() {
  std::uint64_t relayed = 0;
  if (scraper_ && !draining_) {
    const metrics::ScrapeResult r = scraper_->scrape(false);
    for (const auto& [labels, counts] : r.metrics.connections) relayed += counts.active;
  }
  std::string text = std::to_string(workers_.size()) + " worker(s), ";
  if (retiring_) return text + "handed over to a new process";
  if (draining_) return text + "draining";
  return text + std::to_string(relayed) + " relayed connection(s)";
}

void Server::begin_drain() {
  if (systemd_.active()) systemd_.stopping("draining: " + status_text());
  draining_ = true;  // /ready answers 503 from now on
  if (config_->drain_delay.count() > 0) {
    // Load balancers that follow /ready stop sending new connections while the
    // listeners still take the ones already on their way.
    log::info("draining in " + std::to_string(config_->drain_delay.count()) +
              " ms (drain_delay): /ready answers 503, listeners stay open until then");
    drain_delay_ = std::make_unique<Timer>(base_, [this] { start_worker_drain(); });
    drain_delay_->arm_ms(config_->drain_delay.count());
    return;
  }
  start_worker_drain();
}

void Server::start_worker_drain() {
  for (auto& w : workers_) w->begin_drain();
  // The workers exit on their own (all closed, or drain_timeout); poll for that here
  // so the admin endpoints stay up meanwhile.
  drain_poll_ = std::make_unique<Timer>(base_, [this] { check_drained(); });
  drain_poll_->arm_ms(10);
}

void Server::check_drained() {
  for (auto& w : workers_) {
    if (!w->finished()) {
      drain_poll_->arm_ms(10);
      return;
    }
  }
  event_base_loopexit(base_, nullptr);
}

int Server::run() {
  signal(SIGPIPE, SIG_IGN);
  // Signal handlers before any socket listens: a client (or a test) that sees the port
  // open may send SIGTERM at once, and it must drain, not kill. Until the loop runs,
  // libevent records the signal and delivers it then.
  EventBasePtr base(event_base_new());
  base_ = base.get();
  EventPtr sigterm(evsignal_new(base.get(), SIGTERM, &Server::on_stop_signal, this));
  EventPtr sigint(evsignal_new(base.get(), SIGINT, &Server::on_stop_signal, this));
  EventPtr sigusr1(evsignal_new(base.get(), SIGUSR1, &Server::on_reopen_signal, this));
  EventPtr sighup(evsignal_new(base.get(), SIGHUP, &Server::on_reload_signal, this));
  event_add(sigterm.get(), nullptr);
  event_add(sigint.get(), nullptr);
  event_add(sigusr1.get(), nullptr);
  event_add(sighup.get(), nullptr);
  const auto format = config_->access_log_format == conf::AccessLogFormat::Json
                          ? metrics::AccessLogFormat::Json
                          : metrics::AccessLogFormat::Text;
  if (!access_log_->open(config_->access_log, format)) {
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
  // message before any worker runs. Sockets passed by systemd or by the running wsgate
  // (--takeover) are used for their addresses instead of binding
  // (gateway/server_upgrade.cc); a failure from here on leaves that wsgate as it was.
  InheritedSockets inherited;
  if (!collect_inherited_sockets(inherited)) return 1;
  // The admin socket before the listeners': once a client can connect, /ready and
  // /metrics answer too (a probe or script that waits for the listener's port and then
  // asks the admin server found it closed for a moment).
  int admin_fd = config_->admin.enabled ? inherited.take_one(config_->admin.address) : -1;
  if (config_->admin.enabled && admin_fd < 0) {
    std::string error;
    admin_fd = open_listen_socket(config_->admin.address, error, /*reuse_port=*/false);
    if (admin_fd < 0) {
      // error: "listener ADDRESS: REASON"
      log::error("cannot listen on admin address " + to_string(config_->admin.address) + ": " +
                 error.substr(error.find(": ") + 2));
      return 1;
    }
  }
  std::vector<std::vector<ListenSocket>> per_worker(config_->workers);
  auto close_all = [&per_worker] {
    for (auto& sockets : per_worker)
      for (auto& s : sockets) close(s.fd);
  };
  for (std::size_t i = 0; i < config_->listeners.size(); ++i) {
    const conf::Listener& listener = config_->listeners[i];
    const std::vector<std::vector<int>> given = inherited.take(listener.address, config_->workers);
    for (unsigned w = 0; w < config_->workers; ++w) {
      if (!given.empty()) {
        for (int fd : given[w]) per_worker[w].push_back({fd, &listener, i});
        continue;
      }
      std::string error;
      const int fd = open_listen_socket(listener.address, error);
      if (fd < 0) {
        log::error(error);
        close_all();
        if (admin_fd >= 0) close(admin_fd);
        return 1;
      }
      per_worker[w].push_back({fd, &listener, i});
    }
  }
  inherited.close_unused();
  if (takeover_.empty()) {
    std::string error;
    if (!open_upgrade_socket(error)) {
      log::error(error);
      close_all();
      if (admin_fd >= 0) close(admin_fd);
      return 1;
    }
  }
  // [limits] count every worker's connections together.
  client_limits_ =
      config_->limits.any() ? std::make_shared<ClientLimits>(config_->limits) : nullptr;
  for (unsigned w = 0; w < config_->workers; ++w) {
    workers_.push_back(std::make_unique<Worker>(static_cast<int>(w), config_, tls_,
                                                std::move(per_worker[w]), access_log_, pools_));
    workers_.back()->set_client_limits(client_limits_);
  }

  scraper_ = std::make_unique<WorkerScraper>(workers_, draining_, pools_.get());
  scraper_->set_reload([this] { return reload_and_notify("POST /reload"); }, &reload_stats_);
  scraper_->set_certificates(listener_certificates(*config_, *tls_));
  if (config_->admin.enabled) {
    admin_ = std::make_unique<metrics::AdminServer>(
        base.get(), *scraper_,
        metrics::AdminTokens{config_->admin.read_token, config_->admin.write_token},
        config_->admin.per_connection_metrics ? config_->admin.per_connection_limit : 0);
    admin_->listen_on(admin_fd, config_->admin.address.host, config_->admin.address.port);
  }

  start_upstream_tasks();

  for (auto& w : workers_) w->start();
  std::string where;
  for (const auto& l : config_->listeners)
    where += (where.empty() ? "" : ", ") + to_string(l.address);
  log::info("wsgate listening on " + where + " with " + std::to_string(config_->workers) +
            " worker(s), config " + config_->source_file);

  if (admin_) log::info("admin endpoints on " + to_string(config_->admin.address));
  if (takeover_client_) {
    // This process accepts now (both do, from the same sockets, until the old one hears
    // this): the old one stops accepting and lets its connections end.
    std::string error;
    if (takeover_client_->commit(error)) {
      log::info("--takeover: pid " + std::to_string(takeover_client_->old_pid()) +
                " stopped accepting; this process serves the listeners now");
    } else {
      log::warn("--takeover: " + error + "; both processes may accept until it exits");
    }
    takeover_client_.reset();
    if (!open_upgrade_socket(error))
      log::error(error + "; no further binary upgrade from this process");
  }
  // Every listening socket is open (the workers accept from them as their loops start).
  if (systemd_.active()) {
    systemd_.ready("listening on " + where + "; " + status_text());
    status_timer_ = std::make_unique<Timer>(base_, [this] {
      if (draining_) return;
      systemd_.status(status_text());
      status_timer_->arm_ms(kStatusIntervalMs);
    });
    status_timer_->arm_ms(kStatusIntervalMs);
  }

  event_base_dispatch(base.get());

  // The loop ended some other way: still drain, without waiting for drain_delay (its
  // timer needs the loop).
  if (!draining_ || (drain_delay_ && drain_delay_->pending())) {
    if (drain_delay_) drain_delay_->cancel();
    draining_ = true;
    start_worker_drain();
  }
  for (auto& w : workers_) w->join();
  drain_poll_.reset();
  drain_delay_.reset();
  status_timer_.reset();
  upgrade_deadline_.reset();
  upgrade_.reset();
  admin_.reset();
  rebalancer_.reset();
  jwks_.reset();
  health_checker_.reset();
  resolver_.reset();
  // The DNS lookups cancelled just above (the resolver's, the JWKS fetchers') free their
  // requests in deferred callbacks (libevent's evdns): one more turn of the loop runs
  // them; without it a lookup in flight at exit is a leak (LeakSanitizer).
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  workers_.clear();
  // The exit is decided: a further SIGTERM/SIGINT (an impatient supervisor, a test's
  // cleanup) must not turn exit 0 into death by signal while the process tears down.
  // Freeing the signal events restores the default action, so ignore them after that.
  sigterm.reset();
  sigint.reset();
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  log::info("drained, exiting");
  return 0;
}

}  // namespace wsgate::gateway
