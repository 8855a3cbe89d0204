// A worker closing chosen WebSockets: all of them on SIGTERM, those of one backend server
// (it left the pool, or an admin asked), a few of an overloaded server (rebalancing), or
// one by id (admin). Every WebSocket gets a Close from the gateway at a frame boundary,
// to the client and to the backend (proxy/relay.h); a drain spreads them over
// drain_spread (gateway/close_schedule.h).
#include <algorithm>
#include <chrono>
#include <random>

#include "gateway/exchange/exchange.h"
#include "gateway/h1/h1_connection.h"
#include "gateway/worker.h"
#include "metrics/log.h"
#include "proxy/frame_codec.h"

namespace wsgate::gateway {

CloseSchedule& Worker::close_schedule() {
  if (!close_schedule_) {
    close_schedule_ = std::make_unique<CloseSchedule>(
        base_.get(), [this](const CloseSchedule::Target& t, const CloseSchedule::Close& c) {
          return close_now(t, c);
        });
  }
  return *close_schedule_;
}

bool Worker::close_now(const CloseSchedule::Target& target, const CloseSchedule::Close& close) {
  // The exchange may have ended (and its address been reused) since it was scheduled.
  const auto it = exchanges_.find(target.exchange);
  if (it == exchanges_.end() || target.exchange->id() != target.id) return false;
  if (!target.exchange->close_websocket(close.code, close.reason)) return false;
  if (close.rebalance && close.server)
    close.server->rebalanced.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Worker::drain_sessions(conf::Duration spread) {
  std::vector<CloseSchedule::Target> relaying;
  std::vector<Exchange*> handshaking;
  for (auto& [raw, owned] : exchanges_) {
    if (raw->relaying()) {
      // A tunnel has no Close frame to end it gracefully: it runs until drain_timeout.
      if (!raw->is_tunnel()) relaying.push_back({raw, raw->id()});
    } else {
      handshaking.push_back(raw);
    }
  }
  // Heads still being read get 503 now; so do handshakes in progress (drain() ends some
  // exchanges: check each).
  std::vector<H1Connection*> reading;
  for (auto& [raw, owned] : sessions_)
    if (raw->exchange() == nullptr) reading.push_back(raw);
  for (H1Connection* c : reading)
    if (sessions_.count(c) != 0) c->drain();
  for (Exchange* e : handshaking)
    if (exchanges_.count(e) != 0) e->drain();
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
  std::vector<CloseSchedule::Target> targets;
  for (auto& [raw, owned] : exchanges_) {
    if (server->holds(raw->upstream_server()) && raw->relaying() && !raw->closing())
      targets.push_back({raw, raw->id()});
  }
  std::sort(targets.begin(), targets.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  auto close = std::make_shared<CloseSchedule::Close>();
  close->code = code;
  close->reason = reason;
  close_schedule().add(targets, close, spread);
  return targets.size();
}

std::size_t Worker::shed_server(const proxy::ServerPtr& server, std::atomic<std::int64_t>& budget,
                                conf::Duration spread) {
  std::vector<CloseSchedule::Target> candidates;
  for (auto& [raw, owned] : exchanges_) {
    if (server->holds(raw->upstream_server()) && raw->relaying() && !raw->closing() &&
        !close_schedule().scheduled(raw->id()))
      candidates.push_back({raw, raw->id()});
  }
  // The youngest first (ids grow with accept order): they have the least to lose.
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a.id > b.id; });
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
  for (auto& [raw, owned] : exchanges_) {
    if (raw->id() != id) continue;
    CloseSchedule::Close close;
    close.code = code;
    close.reason = reason;
    return close_now({raw, id}, close);
  }
  return false;
}

}  // namespace wsgate::gateway
