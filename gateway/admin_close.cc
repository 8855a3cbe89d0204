// The admin close endpoints' side in the gateway: find the connection's worker, or the
// server in the shared pools, and have the workers send the Closes on their own threads.
#include <memory>

#include "gateway/admin_source.h"
#include "gateway/worker.h"
#include "gateway/worker_fanout.h"
#include "gateway/worker_replies.h"
#include "metrics/log.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::gateway {

bool WorkerScraper::close_connection(int worker, uint64_t id, uint16_t code,
                                     const std::string& reason) {
  // Connection ids are per worker: /connections shows "<worker>-<id>".
  if (worker < 0 || static_cast<std::size_t>(worker) >= workers_.size()) return false;
  Worker& w = *workers_[static_cast<std::size_t>(worker)];
  if (w.finished()) return false;
  auto replies = std::make_shared<WorkerReplies<bool>>(1);
  w.post([&w, replies, id, code, reason] {
    replies->deliver(0, w.close_connection(id, code, reason));
  });
  const auto answer = replies->wait(std::chrono::steady_clock::now() + kDeadline);
  const bool closed = answer[0].value_or(false);
  if (closed)
    log::info("admin: closing connection " + std::to_string(worker) + "-" + std::to_string(id) +
              " with code " + std::to_string(code));
  return closed;
}

std::optional<std::size_t> WorkerScraper::close_server(const std::string& upstream,
                                                       const std::string& server, uint16_t code,
                                                       const std::string& reason) {
  proxy::Pool* pool = pools_ != nullptr ? pools_->find(upstream) : nullptr;
  if (pool == nullptr) return std::nullopt;
  proxy::ServerPtr target;
  for (const auto& s : pool->members()->servers)
    if (s->config.text == server) target = s;
  if (!target) return std::nullopt;
  // The job holds the ServerPtr: the state outlives the comparison.
  const auto answers = gather<std::size_t>(
      workers_,
      [target, code, reason](Worker& w) {
        return w.drain_server(target.get(), code, reason, conf::Duration(0));
      },
      std::chrono::steady_clock::now() + kDeadline);
  std::size_t closed = 0;
  for (const auto& n : answers) closed += n.value_or(0);
  log::info("admin: closing " + std::to_string(closed) + " connection(s) of server " + server +
            " of upstream " + upstream + " with code " + std::to_string(code));
  return closed;
}

}  // namespace wsgate::gateway
