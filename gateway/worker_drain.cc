// A worker closing chosen WebSockets: all of them on SIGTERM, those of one upstream server
// (it left the pool, or an admin asked), a few of an overloaded server (rebalancing), or
// one by id (admin). Every WebSocket gets a Close from the gateway at a frame boundary,
// to the client and to the upstream (proxy/relay/relay.h); a drain spreads them over
// drain_spread (gateway/close_schedule.h).
#include <algorithm>
#include <chrono>
#include <random>

#include "gateway/exchange/exchange.h"
#include "gateway/h1/h1_connection.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "proxy/codec/frame_codec.h"

namespace wsgate::gateway {

CloseSchedule& Worker::close_schedule() {
  if (!close_schedule_) {
    close_schedule_ = std::make_unique<CloseSchedule>(
        base(), [this](const CloseSchedule::Target& t, const CloseSchedule::Close& c) {
          return close_now(t, c);
        });
  }
  return *close_schedule_;
}

bool Worker::close_now(const CloseSchedule::Target& target, const CloseSchedule::Close& close) {
  // The exchange may have ended (and its address been reused) since it was scheduled.
  Exchange* exchange = registry_.find_exchange(target.id);
  if (exchange == nullptr || exchange != target.exchange) return false;
  if (!exchange->close_websocket(close.code, close.reason)) return false;
  if (close.rebalance && close.server)
    close.server->rebalanced.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Worker::drain_sessions(conf::Duration spread) {
  std::vector<CloseSchedule::Target> relaying;
  std::vector<Exchange*> handshaking;
  for (Exchange* e : registry_.exchanges()) {
    if (e->relaying()) {
      // A tunnel has no Close frame to end it gracefully: it runs until drain_timeout.
      if (!e->is_tunnel()) relaying.push_back({e, e->id()});
    } else {
      handshaking.push_back(e);
    }
  }
  // Heads still being read get 503 now; so do handshakes in progress (drain() ends some
  // exchanges: check each).
  // A forwarded request in flight completes; its connection closes after the response.
  for (H1Connection* c : registry_.connections_exchanging()) c->mark_draining();
  for (H1Connection* c : registry_.connections_reading_head())
    if (registry_.contains(c)) c->drain();
  for (Exchange* e : handshaking)
    if (registry_.contains(e)) e->drain();
  // A shuffled order, so the Closes do not follow accept order (or a pattern clients
  // share) across the window.
  std::minstd_rand rng(
      static_cast<unsigned>(index_) * 7919u +
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::shuffle(relaying.begin(), relaying.end(), rng);
  if (spread.count() > 0 && !relaying.empty()) {
    log::info("worker " + std::to_string(index_) + ": closing " + std::to_string(relaying.size()) +
              " WebSocket(s) over " + std::to_string(spread.count()) + " ms");
  }
  auto close = std::make_shared<CloseSchedule::Close>();
  close->code = ws::close_code::kGoingAway;
  close->reason = "server shutting down";
  close_schedule().add(relaying, close, spread);
}

std::size_t Worker::drain_server(const proxy::ServerState* server, uint16_t code,
                                 const std::string& reason, conf::Duration spread) {
  std::vector<CloseSchedule::Target> targets;  // in id order: the oldest first
  for (Exchange* e : registry_.exchanges()) {
    if (server->holds(e->upstream_server()) && e->relaying() && !e->closing())
      targets.push_back({e, e->id()});
  }
  auto close = std::make_shared<CloseSchedule::Close>();
  close->code = code;
  close->reason = reason;
  close_schedule().add(targets, close, spread);
  return targets.size();
}

std::size_t Worker::shed_server(const proxy::ServerPtr& server, std::atomic<std::int64_t>& budget,
                                conf::Duration spread) {
  std::vector<CloseSchedule::Target> candidates;
  for (Exchange* e : registry_.exchanges()) {
    if (server->holds(e->upstream_server()) && e->relaying() && !e->closing() &&
        !close_schedule().scheduled(e->id()))
      candidates.push_back({e, e->id()});
  }
  // The youngest first (ids grow with accept order): they have the least to lose.
  std::reverse(candidates.begin(), candidates.end());
  std::vector<CloseSchedule::Target> chosen;
  for (const auto& c : candidates) {
    if (budget.fetch_sub(1, std::memory_order_relaxed) <= 0) break;
    chosen.push_back(c);
  }
  auto close = std::make_shared<CloseSchedule::Close>();
  close->code = ws::close_code::kGoingAway;
  close->reason = "rebalancing";
  close->rebalance = true;
  close->server = server;
  close_schedule().add(chosen, close, spread);
  return chosen.size();
}

bool Worker::close_connection(uint64_t id, uint16_t code, const std::string& reason) {
  Exchange* exchange = registry_.find_exchange(id);
  if (exchange == nullptr) return false;
  CloseSchedule::Close close;
  close.code = code;
  close.reason = reason;
  return close_now({exchange, id}, close);
}

}  // namespace wsgate::gateway
