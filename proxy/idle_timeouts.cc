#include "proxy/idle_timeouts.h"

#include <algorithm>

namespace wsgate::proxy {

struct IdleTimeouts::List {
  IdleTimeouts* owner;
  int64_t timeout_ms;
  int64_t quiet_ms;
  Entry* front = nullptr;  // the least recently active
  Entry* back = nullptr;
  // The last entry of the quiet prefix (told on_quiet()); null when none is.
  Entry* quiet_end = nullptr;
  std::size_t count = 0;
};

IdleTimeouts::Entry::~Entry() {
  if (list_ != nullptr) list_->owner->remove(*this);
}

IdleTimeouts::IdleTimeouts(event_base* base, std::size_t max_per_sweep, Clock clock)
    : base_(base),
      max_per_sweep_(std::max<std::size_t>(max_per_sweep, 1)),
      clock_(std::move(clock)),
      timer_(base, [this] { sweep(); }) {}

IdleTimeouts::~IdleTimeouts() {
  for (const std::unique_ptr<List>& l : lists_) {
    for (Entry* e = l->front; e != nullptr;) {
      Entry* next = e->next_;
      e->list_ = nullptr;
      e->prev_ = e->next_ = nullptr;
      e = next;
    }
  }
}

int64_t IdleTimeouts::now_ms() const {
  if (clock_) return clock_();
  timeval now{};
  event_base_gettimeofday_cached(base_, &now);
  return to_ms(now);
}

int64_t IdleTimeouts::quiet_ms(int64_t timeout_ms) {
  // Soon enough that an idle connection's buffers go within seconds, late enough that a
  // connection with a message every second or so keeps them.
  constexpr int64_t kQuietMs = 5000;
  return std::min(kQuietMs, timeout_ms / 2);
}

IdleTimeouts::List& IdleTimeouts::list_for(int64_t timeout_ms) {
  for (const std::unique_ptr<List>& l : lists_)
    if (l->timeout_ms == timeout_ms) return *l;
  lists_.push_back(std::make_unique<List>(List{this, timeout_ms, quiet_ms(timeout_ms)}));
  return *lists_.back();
}

void IdleTimeouts::unlink(Entry& e) {
  List& l = *e.list_;
  if (l.quiet_end == &e) l.quiet_end = e.prev_;  // the prefix before it stays quiet
  (e.prev_ != nullptr ? e.prev_->next_ : l.front) = e.next_;
  (e.next_ != nullptr ? e.next_->prev_ : l.back) = e.prev_;
  e.prev_ = e.next_ = nullptr;
  e.list_ = nullptr;
  l.count--;
}

void IdleTimeouts::push_back(List& l, Entry& e) {
  e.list_ = &l;
  e.prev_ = l.back;
  e.next_ = nullptr;
  (l.back != nullptr ? l.back->next_ : l.front) = &e;
  l.back = &e;
  l.count++;
}

void IdleTimeouts::add(Entry& e, int64_t timeout_ms) {
  remove(e);
  List& l = list_for(std::max<int64_t>(timeout_ms, 1));
  const int64_t now = now_ms();
  e.last_ms_ = now;
  push_back(l, e);
  size_++;
  // Its first event (quiet, or the deadline when quiet_ms is 0) may come before the
  // earliest one the timer is armed for; otherwise the timer finds it in time.
  arm_for(now + (l.quiet_ms > 0 ? l.quiet_ms : l.timeout_ms), now);
}

void IdleTimeouts::touch(Entry& e, int64_t now_ms) {
  List* l = e.list_;
  if (l == nullptr) return;
  e.last_ms_ = now_ms;
  if (l->back == &e) {
    // Already the most recent: it leaves the quiet prefix only if it is the whole list.
    if (l->quiet_end == &e) l->quiet_end = e.prev_;
  } else {
    unlink(e);
    push_back(*l, e);
  }
  // Its next quiet point may come before the timer (armed for a far deadline); usually
  // the timer is due sooner and this is one comparison.
  arm_for(now_ms + (l->quiet_ms > 0 ? l->quiet_ms : l->timeout_ms), now_ms);
}

void IdleTimeouts::remove(Entry& e) {
  if (e.list_ == nullptr) return;
  unlink(e);
  size_--;
}

std::size_t IdleTimeouts::sweep() {
  const int64_t now = now_ms();
  armed_for_ = -1;  // the timer ran (or is replaced below)
  std::size_t expired = 0;
  bool more = false;
  // By index: a callback may add an entry with a new timeout (a new list).
  for (std::size_t i = 0; i < lists_.size(); ++i) {
    List& l = *lists_[i];
    // Due: idle for the whole timeout (within the loop clock's millisecond).
    while (l.front != nullptr && l.front->last_ms_ + l.timeout_ms <= now + 1) {
      if (expired == max_per_sweep_) {
        more = true;
        break;
      }
      Entry& e = *l.front;
      remove(e);
      expired++;
      e.on_idle_timeout();  // may remove, add or destroy other entries
    }
    if (l.quiet_ms <= 0) continue;
    // The quiet prefix grows from where it ended (an entry told once stays told until
    // its next activity moves it to the back, out of the prefix).
    for (;;) {
      Entry* next = l.quiet_end != nullptr ? l.quiet_end->next_ : l.front;
      if (next == nullptr || next->last_ms_ + l.quiet_ms > now + 1) break;
      l.quiet_end = next;
      next->on_quiet();  // must not remove or add entries
    }
  }
  // Lists left empty go (a reload may have retired their timeout for good).
  std::erase_if(lists_, [](const std::unique_ptr<List>& l) { return l->count == 0; });
  if (more) {
    arm_for(now, now);  // the next loop turn
  } else {
    rearm(now);
  }
  if (armed_for_ < 0) timer_.cancel();
  return expired;
}

void IdleTimeouts::rearm(int64_t now) {
  int64_t next = -1;
  for (const std::unique_ptr<List>& l : lists_) {
    if (l->front == nullptr) continue;
    int64_t at = l->front->last_ms_ + l->timeout_ms;
    const Entry* unquiet = l->quiet_end != nullptr ? l->quiet_end->next_ : l->front;
    if (l->quiet_ms > 0 && unquiet != nullptr) at = std::min(at, unquiet->last_ms_ + l->quiet_ms);
    if (next < 0 || at < next) next = at;
  }
  if (next >= 0) arm_for(next, now);
}

void IdleTimeouts::arm_for(int64_t deadline_ms, int64_t now) {
  if (armed_for_ >= 0 && armed_for_ <= deadline_ms) return;  // the timer comes first
  armed_for_ = deadline_ms;
  timer_.arm_ms(std::max<int64_t>(deadline_ms - now, 0));
}

}  // namespace wsgate::proxy
