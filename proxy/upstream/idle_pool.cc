#include "proxy/upstream/idle_pool.h"

#include <event2/buffer.h>

namespace wsgate::proxy {
namespace {

// Indexes of metrics::names::kIdleCloseReasons.
constexpr std::size_t kTimeout = 0;
constexpr std::size_t kClosed = 1;
constexpr std::size_t kData = 2;
constexpr std::size_t kEvicted = 3;
static_assert(metrics::names::kIdleCloseReasons[kEvicted] == "evicted");

}  // namespace

metrics::UpstreamPoolStats* IdlePool::stats(std::string_view upstream, const ServerState* server) {
  if (metrics_ == nullptr || server == nullptr) return nullptr;
  return &metrics_->upstream_pool(upstream, server->config.text);
}

BufferEventPtr IdlePool::take(std::string_view upstream, const ServerState* server) {
  metrics::UpstreamPoolStats* counts = stats(upstream, server);
  const auto it = idle_.find(server);
  if (it == idle_.end() || it->second.empty()) {
    if (counts != nullptr) counts->misses++;
    return nullptr;
  }
  // The newest: least likely to have been closed by the server's own idle timeout.
  std::unique_ptr<Idle> idle = std::move(it->second.back());
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  if (idle->stats != nullptr) idle->stats->idle--;
  if (counts != nullptr) counts->hits++;
  // Reading stays enabled: the taker sets its callbacks before the loop reads again, and
  // leaving the socket registered saves an epoll_ctl per request each way.
  bufferevent_setcb(idle->bev.get(), nullptr, nullptr, nullptr, nullptr);
  return std::move(idle->bev);
}

void IdlePool::put(std::string_view upstream, const ServerPtr& server, BufferEventPtr bev,
                   std::size_t max_idle, conf::Duration timeout) {
  if (max_idle == 0 || !server || !bev) return;
  List& list = idle_[server.get()];
  while (list.size() >= max_idle) {  // the oldest goes
    if (list.front()->stats != nullptr) {
      list.front()->stats->idle--;
      list.front()->stats->closes[kEvicted]++;
    }
    list.pop_front();
  }
  auto idle = std::make_unique<Idle>();
  idle->pool = this;
  idle->server = server;
  idle->stats = stats(upstream, server.get());
  if (idle->stats != nullptr) idle->stats->idle++;
  idle->bev = std::move(bev);
  event_base* base = bufferevent_get_base(idle->bev.get());
  idle->timer.reset(evtimer_new(base, &IdlePool::on_timeout, idle.get()));
  const auto ms = timeout.count();
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(idle->timer.get(), &tv);
  bufferevent_setwatermark(idle->bev.get(), EV_READ, 0, 0);
  bufferevent_setcb(idle->bev.get(), &IdlePool::on_read, nullptr, &IdlePool::on_event, idle.get());
  bufferevent_enable(idle->bev.get(), EV_READ);
  list.push_back(std::move(idle));
}

std::size_t IdlePool::size() const {
  std::size_t n = 0;
  for (const auto& [server, list] : idle_) n += list.size();
  return n;
}

void IdlePool::on_read(bufferevent* bev, void* self) {
  // RFC 9112 9.3: nothing may arrive on an idle connection but its close; anything else
  // (a stray or late response) would be taken for the next request's answer.
  auto* idle = static_cast<Idle*>(self);
  const bool data = evbuffer_get_length(bufferevent_get_input(bev)) != 0;
  idle->pool->drop(idle, data ? kData : kClosed);
}

void IdlePool::on_event(bufferevent* /*bev*/, short /*what*/, void* self) {
  auto* idle = static_cast<Idle*>(self);
  idle->pool->drop(idle, kClosed);
}

void IdlePool::on_timeout(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  auto* idle = static_cast<Idle*>(self);
  idle->pool->drop(idle, kTimeout);
}

void IdlePool::drop(Idle* idle, std::size_t reason) {
  const auto it = idle_.find(idle->server.get());
  if (it == idle_.end()) return;
  for (auto e = it->second.begin(); e != it->second.end(); ++e) {
    if (e->get() != idle) continue;
    if (idle->stats != nullptr) {
      idle->stats->idle--;
      idle->stats->closes[reason]++;
    }
    bufferevent_setcb(idle->bev.get(), nullptr, nullptr, nullptr, nullptr);
    it->second.erase(e);  // frees the bufferevent (closing the socket) and the timer
    if (it->second.empty()) idle_.erase(it);
    return;
  }
}

}  // namespace wsgate::proxy
