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

UpstreamConnection IdlePool::take(std::string_view upstream, const ServerState* server) {
  const auto it = idle_.find(server);
  if (it == idle_.end()) {
    if (metrics::UpstreamPoolStats* counts = stats(upstream, server)) counts->misses++;
    return {};
  }
  if (it->second.stats != nullptr) it->second.stats->hits++;
  // The newest: least likely to have been closed by the server's own idle timeout.
  std::unique_ptr<Idle> idle = remove(it->second, it->second.idle.size() - 1);
  if (it->second.idle.empty()) idle_.erase(it);
  // Reading stays enabled: the taker sets its callbacks before the loop reads again, and
  // leaving the socket registered saves an epoll_ctl per request each way.
  bufferevent_setcb(idle->bev.get(), nullptr, nullptr, nullptr, nullptr);
  UpstreamConnection bev = std::move(idle->bev);
  recycle(std::move(idle));
  return bev;
}

std::unique_ptr<IdlePool::Idle> IdlePool::remove(Server& server, std::size_t i) {
  auto& list = server.idle;
  std::unique_ptr<Idle> idle = std::move(list[i]);
  list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
  if (idle->stats != nullptr) idle->stats->idle--;
  return idle;
}

void IdlePool::recycle(std::unique_ptr<Idle> idle) {
  idle->bev.reset();  // closes the socket of a dropped connection (taken ones moved out)
  idle->server = nullptr;
  idle->stats = nullptr;
  if (spare_.size() < kMaxSpare) spare_.push_back(std::move(idle));
}

void IdlePool::put(std::string_view upstream, const ServerPtr& server, UpstreamConnection bev,
                   std::size_t max_idle, conf::Duration timeout) {
  if (max_idle == 0 || !server || !bev) return;
  bev.start_small_reads();  // its next read is a response head
  auto [it, added] = idle_.try_emplace(server.get());
  Server& entry = it->second;
  if (added) {
    entry.state = server;
    entry.stats = stats(upstream, server.get());
  }
  while (entry.idle.size() >= max_idle) {  // the oldest goes
    std::unique_ptr<Idle> oldest = remove(entry, 0);
    if (oldest->stats != nullptr) oldest->stats->closes[kEvicted]++;
    recycle(std::move(oldest));
  }
  std::unique_ptr<Idle> idle;
  if (!spare_.empty()) {
    idle = std::move(spare_.back());
    spare_.pop_back();
  } else {
    idle = std::make_unique<Idle>();
    idle->pool = this;
    idle->timer.reset(
        evtimer_new(bufferevent_get_base(bev.get()), &IdlePool::on_timeout, idle.get()));
  }
  idle->server = server.get();
  idle->stats = entry.stats;
  if (idle->stats != nullptr) idle->stats->idle++;
  idle->bev = std::move(bev);
  const auto ms = timeout.count();
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  timeval now{};
  event_base_gettimeofday_cached(bufferevent_get_base(idle->bev.get()), &now);
  timeradd(&now, &tv, &idle->due);
  // A timer still pending from the entry's last use fires before this deadline and waits
  // out the rest; only a later (or no) pending expiry is armed again.
  if (evtimer_pending(idle->timer.get(), nullptr) == 0 ||
      timercmp(&idle->armed_for, &idle->due, >)) {
    evtimer_add(idle->timer.get(), &tv);
    idle->armed_for = idle->due;
  }
  // Any byte or the close is noticed: reading on (it mostly is already; then nothing
  // changes). No owner sets a read watermark on an upstream connection.
  bufferevent_setcb(idle->bev.get(), &IdlePool::on_read, nullptr, &IdlePool::on_event, idle.get());
  idle->bev.set_reading(true);
  entry.idle.push_back(std::move(idle));
}

std::size_t IdlePool::size() const {
  std::size_t n = 0;
  for (const auto& [server, entry] : idle_) n += entry.idle.size();
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
  if (!idle->bev) return;  // a spare entry, or one whose connection was taken
  timeval now{};
  event_base_gettimeofday_cached(bufferevent_get_base(idle->bev.get()), &now);
  if (timercmp(&now, &idle->due, <)) {  // armed for an earlier stay in the pool
    timeval left{};
    timersub(&idle->due, &now, &left);
    evtimer_add(idle->timer.get(), &left);
    idle->armed_for = idle->due;
    return;
  }
  idle->pool->drop(idle, kTimeout);
}

void IdlePool::drop(Idle* idle, std::size_t reason) {
  const auto it = idle_.find(idle->server);
  if (it == idle_.end()) return;
  auto& list = it->second.idle;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].get() != idle) continue;
    std::unique_ptr<Idle> gone = remove(it->second, i);
    if (it->second.idle.empty()) idle_.erase(it);
    if (gone->stats != nullptr) gone->stats->closes[reason]++;
    bufferevent_setcb(gone->bev.get(), nullptr, nullptr, nullptr, nullptr);
    recycle(std::move(gone));  // frees the bufferevent, closing the socket
    return;
  }
}

}  // namespace wsgate::proxy
