#include "gateway/close_schedule.h"

#include <chrono>

#include "proxy/upstream/upstream_pool.h"

namespace wsgate::gateway {

std::vector<std::int64_t> spread_offsets_ms(std::size_t n, std::int64_t spread_ms) {
  std::vector<std::int64_t> out(n, 0);
  if (spread_ms <= 0) return out;
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::int64_t>(static_cast<double>(spread_ms) * static_cast<double>(i) /
                                       static_cast<double>(n));
  return out;
}

CloseSchedule::CloseSchedule(event_base* base, CloseFn close)
    : close_(std::move(close)), timer_(base, [this] { run_due(); }) {}

void CloseSchedule::add(const std::vector<Target>& targets,
                        const std::shared_ptr<const Close>& close, conf::Duration spread) {
  if (spread.count() <= 0) {
    for (const Target& t : targets) close_(t, *close);
    return;
  }
  const std::int64_t now = proxy::steady_now_ms();
  const std::vector<std::int64_t> offsets = spread_offsets_ms(targets.size(), spread.count());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    queue_.push(Entry{now + offsets[i], seq_++, targets[i], close});
    ids_.insert(targets[i].id);
  }
  run_due();  // the first one is due now
}

void CloseSchedule::run_due() {
  const std::int64_t now = proxy::steady_now_ms();
  while (!queue_.empty() && queue_.top().due_ms <= now) {
    const Entry e = queue_.top();
    queue_.pop();
    if (const auto it = ids_.find(e.target.id); it != ids_.end()) ids_.erase(it);
    close_(e.target, *e.close);  // may end sessions; never touches the queue
  }
  arm();
}

void CloseSchedule::arm() {
  timer_.cancel();
  if (queue_.empty()) return;
  timer_.arm_ms(queue_.top().due_ms - proxy::steady_now_ms());
}

}  // namespace wsgate::gateway
