// Binary upgrade without dropping WebSockets (docs/operations.md, "Binary upgrade"), and
// the sockets a process inherits at start.
//
// The running process listens on upgrade_socket (gateway/upgrade_listener.h). A new one,
// started with --takeover, receives a duplicate of every listening socket
// (gateway/takeover_client.h), matches them to its own listeners by address, binds only
// what is new, starts accepting, and says READY. Both processes accept from the same
// sockets until then, so no connection waits or is refused. The old process then stops
// accepting (closing its own descriptors only), lets its connections run until they end
// or upgrade_deadline, then drains as on SIGTERM, and exits 0 when the last one ends.
#include <unistd.h>

#include <chrono>

#include "gateway/inherited_sockets.h"
#include "gateway/server.h"
#include "gateway/takeover_client.h"
#include "gateway/worker.h"
#include "gateway/worker_fanout.h"
#include "metrics/log.h"

namespace wsgate::gateway {

bool Server::collect_inherited_sockets(InheritedSockets& into) {
  const std::vector<int> activated = systemd_listen_fds();
  for (int fd : activated) into.add(fd, "systemd (LISTEN_FDS)");
  if (!activated.empty())
    log::info("systemd passed " + std::to_string(activated.size()) + " socket(s)");
  if (takeover_.empty()) return true;
  auto client = std::make_unique<TakeoverClient>();
  std::string error;
  if (!client->fetch(takeover_, into, error)) {
    log::error(error + "; nothing was taken over, the running wsgate is unchanged");
    return false;
  }
  log::info("--takeover: received " + std::to_string(client->socket_count()) +
            " listening socket(s) from pid " + std::to_string(client->old_pid()));
  takeover_client_ = std::move(client);
  return true;
}

bool Server::open_upgrade_socket(std::string& error) {
  if (config_->upgrade_socket.empty()) return true;
  upgrade_ = std::make_unique<UpgradeListener>(
      base_, UpgradeListener::Hooks{
                 [this] { return handover_refusal(); },
                 [this](std::string& why) { return handover_sockets(why); },
                 [this](pid_t successor) { handed_over(successor); },
             });
  if (!upgrade_->listen(config_->upgrade_socket, error)) {
    upgrade_.reset();
    return false;
  }
  log::info("upgrade_socket " + config_->upgrade_socket +
            ": a new wsgate started with --takeover takes the listening sockets over here");
  return true;
}

std::string Server::handover_refusal() const {
  if (draining_) return "this process is draining";
  if (retiring_) return "this process has already handed its sockets over";
  return {};
}

std::vector<UpgradeListener::HandedSocket> Server::handover_sockets(std::string& error) {
  using Sockets = std::vector<std::pair<conf::HostPort, int>>;
  const auto answers = gather<Sockets>(
      workers_, [](Worker& w) { return w.duplicate_listening_sockets(); },
      std::chrono::steady_clock::now() + std::chrono::seconds(5));
  std::vector<UpgradeListener::HandedSocket> out;
  bool complete = true;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) {
      complete = false;
      error = "worker " + std::to_string(i) + " did not answer within 5 s";
      continue;
    }
    for (const auto& [address, fd] : *answers[i])
      out.push_back({"listener", to_string(address), fd});
  }
  if (admin_) {
    const int fd = admin_->duplicate_listening_socket();
    if (fd >= 0) out.push_back({"admin", to_string(config_->admin.address), fd});
  }
  if (!complete || out.empty()) {
    for (const auto& s : out) close(s.fd);
    if (complete) error = "no listening socket to hand over";
    return {};
  }
  return out;
}

void Server::handed_over(pid_t successor) {
  retiring_ = true;
  // upgrade_ has removed its socket file already (the new process makes its own there)
  // and takes no further takeover.
  if (admin_) admin_->stop_listening();
  for (auto& w : workers_) w->retire();
  const long long deadline = config_->upgrade_deadline.count();
  log::info("pid " + std::to_string(successor) +
            " took over the listening sockets: this process accepts no more; its connections "
            "run on until they end, at most " +
            std::to_string(deadline) + " ms (upgrade_deadline), then drain");
  if (systemd_.active()) systemd_.status("handed over to pid " + std::to_string(successor));
  upgrade_deadline_ = std::make_unique<Timer>(base_, [this] {
    if (draining_) return;
    log::info("upgrade_deadline reached: draining the remaining connections");
    draining_ = true;
    start_worker_drain();
  });
  upgrade_deadline_->arm_ms(deadline);
  // The process exits once every worker has finished (gateway/server.cc, check_drained).
  drain_poll_ = std::make_unique<Timer>(base_, [this] { check_drained(); });
  drain_poll_->arm_ms(10);
}

}  // namespace wsgate::gateway
