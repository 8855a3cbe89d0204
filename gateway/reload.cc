// Configuration reload in place (SIGHUP, POST /reload), on the main thread.
//
// Order: load and validate the whole file (conf::load_config: every error has its
// file:line:column), refuse what cannot change in a running process, build the TLS
// contexts, reopen the access log if its target changed, open the sockets of listeners
// whose address is new. Any failure so far rejects the reload: what was opened is closed,
// the error is logged and answered, the running config stays. Only then is the new
// snapshot published: new pools (servers that stay keep their state, see
// proxy/upstream/upstream_pool.h), every worker gets a Worker::Update by post(), the resolver and
// health checker restart for the new config.
//
// What keeps running on the old config: every established connection (WebSockets,
// tunnels, HTTP/2 sessions and their streams) and every request whose head was being
// read: each session holds its config through the worker's generation, which keeps the
// config, its TLS contexts, its pools and the worker's balancers over them alive until
// the last such session ends (gateway/worker.h, Worker::Generation). A reload closes
// only listening sockets of addresses no longer configured, and the WebSockets of upstream
// servers it removes from their upstream (Close 1001 spread over drain_spread,
// Server::drain_server).
//
// Cannot change in place (the reload is rejected, naming the key): `workers` (the
// threads and their sockets are made at start), the [admin] listener's presence and
// address, and upgrade_socket. The admin token and per-connection settings are applied.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "conf/config_loader.h"
#include "gateway/admin_source.h"
#include "gateway/listen_socket.h"
#include "gateway/server.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "proxy/auth/jwks_fetcher.h"

namespace wsgate::gateway {
namespace {

bool same_address(const conf::HostPort& a, const conf::HostPort& b) {
  return a.host == b.host && a.port == b.port;
}

const conf::Listener* find_listener(const conf::Config& c, const conf::HostPort& address) {
  for (const auto& l : c.listeners)
    if (same_address(l.address, address)) return &l;
  return nullptr;
}

// Servers of `before` that no pool of `after` holds any more (by address text within the
// upstream): the reload took them out of rotation. Their established connections run on
// the old generation until Server::drain_server has closed them.
std::vector<std::pair<std::string, proxy::ServerPtr>> servers_left(proxy::UpstreamPools& before,
                                                                   proxy::UpstreamPools& after) {
  std::vector<std::pair<std::string, proxy::ServerPtr>> gone;
  for (std::size_t i = 0; i < before.size(); ++i) {
    proxy::Pool& old_pool = before.at(i);
    const proxy::Pool* new_pool = after.find(old_pool.name());
    const auto new_members =
        new_pool != nullptr ? new_pool->members() : std::shared_ptr<const proxy::Members>();
    for (const auto& s : old_pool.members()->servers) {
      bool stays = false;
      if (new_members)
        for (const auto& n : new_members->servers) stays |= n->config.text == s->config.text;
      if (!stays) gone.emplace_back(old_pool.name(), s);
    }
  }
  return gone;
}

bool same_limits(const conf::Limits& a, const conf::Limits& b) {
  return a.max_connections == b.max_connections &&
         a.max_connections_per_client == b.max_connections_per_client &&
         a.new_connections_per_second_per_client == b.new_connections_per_second_per_client &&
         a.new_connections_burst == b.new_connections_burst &&
         a.client_ipv6_prefix == b.client_ipv6_prefix && a.client_table_size == b.client_table_size;
}

std::string listener_list(const std::vector<std::string>& addresses) {
  std::string out;
  for (const auto& a : addresses) out += (out.empty() ? "" : " ") + a;
  return out;
}

}  // namespace

std::string Server::reload_refusal(const conf::Config& next) const {
  if (next.workers != config_->workers)
    return "workers cannot change while running (" + std::to_string(config_->workers) + " -> " +
           std::to_string(next.workers) + "); restart wsgate to change it";
  if (next.upgrade_socket != config_->upgrade_socket)
    return "upgrade_socket cannot change while running (\"" + config_->upgrade_socket + "\" -> \"" +
           next.upgrade_socket + "\"); a binary upgrade applies it";
  if (next.admin.enabled != config_->admin.enabled ||
      (next.admin.enabled && !same_address(next.admin.address, config_->admin.address)))
    return "the [admin] listener cannot be added, removed or moved while running (" +
           (config_->admin.enabled ? to_string(config_->admin.address) : std::string("none")) +
           " -> " + (next.admin.enabled ? to_string(next.admin.address) : std::string("none")) +
           "); restart wsgate to change it";
  return {};
}

bool Server::open_new_listeners(const conf::Config& next,
                                std::vector<std::vector<ListenSocket>>& out,
                                std::string& error) const {
  out.assign(workers_.size(), {});
  for (std::size_t i = 0; i < next.listeners.size(); ++i) {
    const conf::Listener& listener = next.listeners[i];
    const bool known = find_listener(*config_, listener.address) != nullptr;
    for (auto& sockets : out) {
      const int fd = known ? -1 : open_listen_socket(listener.address, error);
      if (!known && fd < 0) {
        for (auto& opened : out)
          for (auto& s : opened)
            if (s.fd >= 0) close(s.fd);
        out.clear();
        return false;
      }
      sockets.push_back({fd, &listener, i});
    }
  }
  return true;
}

void Server::start_upstream_tasks() {
  // Host-name servers are re-resolved and health checks run on this thread's loop;
  // workers read the results from the pools.
  resolver_ = std::make_unique<proxy::UpstreamResolver>(base_, *config_, *pools_);
  // A member DNS drops is drained (gateway/server_drain.cc).
  resolver_->on_removed([this](const std::string& upstream, const proxy::ServerPtr& server) {
    drain_server(upstream, server);
  });
  resolver_->start();
  health_checker_ = std::make_unique<proxy::HealthChecker>(base_, *config_, *pools_);
  health_checker_->start();
  // jwks_url keys, fetched here and published to the workers through tls_'s key sources.
  jwks_ = std::make_unique<proxy::JwksFetchers>(base_, *config_, *tls_);
  jwks_->start();
  rebalancer_ = std::make_unique<proxy::Rebalancer>(
      base_, *config_, *pools_,
      [this](const std::string& upstream, const proxy::ServerPtr& server, std::size_t count,
             conf::Duration spread) { shed(upstream, server, count, spread); });
  rebalancer_->start();
}

metrics::ReloadResult Server::reload(std::string_view trigger) {
  const std::string who(trigger);
  auto reject = [&](const std::string& why) {
    reload_stats_.failed++;
    log::error(who + ": configuration not reloaded, the running one stays in use: " + why);
    return metrics::ReloadResult{false, why};
  };
  if (draining_) return reject("draining");
  if (retiring_) return reject("handed over to a new process (binary upgrade)");
  // The new process has this process's listening sockets as they are now.
  if (upgrade_ && upgrade_->handing_over())
    return reject("a binary upgrade is in progress (a new process is taking the sockets over)");

  // 1. Everything that can fail, before anything is published.
  const conf::LoadResult loaded = conf::load_config(config_->source_file);
  if (!loaded.ok()) return reject(loaded.error->to_string());
  const conf::ConfigPtr next = loaded.config;
  if (std::string why = reload_refusal(*next); !why.empty()) return reject(why);
  std::string error;
  tls::TlsSnapshotPtr tls = tls::build_tls_snapshot(*next, error);
  if (!tls) return reject(error);
  // Keys fetched from a jwks_url the new config names too serve it at once.
  proxy::adopt_fetched_keys(*tls, *tls_);
  std::shared_ptr<metrics::AccessLog> access_log = access_log_;
  if (next->access_log != config_->access_log ||
      next->access_log_format != config_->access_log_format) {
    access_log = std::make_shared<metrics::AccessLog>();
    const auto format = next->access_log_format == conf::AccessLogFormat::Json
                            ? metrics::AccessLogFormat::Json
                            : metrics::AccessLogFormat::Text;
    if (!access_log->open(next->access_log, format))
      return reject("cannot open access_log " + next->access_log + ": " + std::strerror(errno));
  }
  std::vector<std::vector<ListenSocket>> sockets;
  if (!open_new_listeners(*next, sockets, error)) return reject(error);

  // 2. Publish. The old resolver and checker hold references into the old config and
  // pools: they stop first. The old pools stay alive in the workers' old generations.
  std::vector<std::string> added, removed;
  for (const auto& l : next->listeners)
    if (find_listener(*config_, l.address) == nullptr) added.push_back(to_string(l.address));
  for (const auto& l : config_->listeners)
    if (find_listener(*next, l.address) == nullptr) removed.push_back(to_string(l.address));
  rebalancer_.reset();
  jwks_.reset();
  health_checker_.reset();
  resolver_.reset();
  auto pools = std::make_shared<proxy::UpstreamPools>(*next, pools_.get());
  // Changed [limits]: new numbers apply in place, the counts of established connections
  // kept. Only a new table size or IPv6 grouping, or limits turned on or per-client limits
  // added, need a new table; connections admitted before stay counted in the old one
  // (released into it when they end) and so do not count against the new limits.
  std::shared_ptr<ClientLimits> client_limits = client_limits_;
  if (!same_limits(config_->limits, next->limits)) {
    if (!next->limits.any()) {
      client_limits = nullptr;
    } else if (client_limits && client_limits->can_update_to(next->limits)) {
      client_limits->update(next->limits);
    } else {
      client_limits = std::make_shared<ClientLimits>(next->limits);
    }
  }
  const auto left = servers_left(*pools_, *pools);
  for (std::size_t w = 0; w < workers_.size(); ++w)
    workers_[w]->adopt({next, tls, access_log, pools, std::move(sockets[w]), client_limits});
  config_ = next;
  tls_ = tls;
  access_log_ = access_log;
  pools_ = pools;
  client_limits_ = client_limits;
  if (scraper_) {
    scraper_->set_pools(pools_.get());
    scraper_->set_certificates(listener_certificates(*config_, *tls_));
  }
  if (admin_) {
    admin_->set_tokens({config_->admin.read_token, config_->admin.write_token});
    admin_->set_per_connection_limit(
        config_->admin.per_connection_metrics ? config_->admin.per_connection_limit : 0);
  }
  start_upstream_tasks();
  // Servers the reload took out of their upstream: no new connection picks them; the
  // WebSockets they hold (on the generation they started with) get Close 1001 spread over
  // the new drain_spread.
  for (const auto& [upstream, server] : left) {
    log::info(who + ": upstream " + upstream + ": server " + server->config.text +
              " left the pool; its WebSockets are drained");
    drain_server(upstream, server);
  }

  reload_stats_.succeeded++;
  reload_stats_.last_success_unix = static_cast<double>(std::time(nullptr));
  std::string summary = std::to_string(config_->listeners.size()) + " listener(s)";
  if (!added.empty()) summary += ", opened " + listener_list(added);
  if (!removed.empty()) summary += ", closed " + listener_list(removed);
  summary += ", " + std::to_string(config_->routes.size()) + " route(s), " +
             std::to_string(config_->upstreams.size()) + " upstream(s) from " +
             config_->source_file;
  log::info(who + ": configuration reloaded: " + summary +
            "; new connections use it, established ones keep theirs");
  // log_level / log_format: from the next line on (this one still in the old ones).
  apply_log_settings(*config_);
  return {true, summary};
}

}  // namespace wsgate::gateway
