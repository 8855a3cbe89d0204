// Draining one upstream server's connections across the workers, when it leaves the pool.
#include <atomic>
#include <memory>

#include "gateway/server.h"
#include "gateway/worker.h"
#include "gateway/worker_fanout.h"
#include "metrics/log.h"
#include "proxy/codec/frame_codec.h"

namespace wsgate::gateway {

void Server::drain_server(const std::string& upstream, const proxy::ServerPtr& server) {
  const conf::Duration spread = config_->drain_spread;
  // The job holds the ServerPtr, so the state outlives the comparison.
  broadcast(workers_, [upstream, server, spread](Worker& worker) {
    const std::size_t n = worker.drain_server(server.get(), ws::close_code::kGoingAway,
                                              "upstream server left the pool", spread);
    if (n > 0)
      log::info("worker " + std::to_string(worker.index()) + ": closing " + std::to_string(n) +
                " WebSocket(s) of server " + server->config.text + " of upstream " + upstream +
                " (left the pool) over " + std::to_string(spread.count()) + " ms");
  });
}

void Server::shed(const std::string& /*upstream*/, const proxy::ServerPtr& server,
                  std::size_t count, conf::Duration spread) {
  if (draining_) return;  // the drain closes everything anyway
  // One budget for all workers: each close takes one unit, so together they close at
  // most `count` (the main thread does not know which worker holds which connection).
  auto budget = std::make_shared<std::atomic<std::int64_t>>(static_cast<std::int64_t>(count));
  broadcast(workers_, [server, budget, spread](Worker& worker) {
    if (budget->load(std::memory_order_relaxed) > 0) worker.shed_server(server, *budget, spread);
  });
}

}  // namespace wsgate::gateway
