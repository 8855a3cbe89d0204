// The idle timeouts of many connections on one event loop, with one timer (issue 13): a
// relayed WebSocket used to hold a libevent event (128 bytes and the allocator's header)
// and a Timer for its idle_timeout alone. An Entry's deadline is its last activity plus
// its timeout; activity (touch) only moves the entry to the back of its list: no libevent
// call, no system call. Entries with the same timeout share a list kept in order of last
// activity, so its front is the next to expire; the one timer is armed for the earliest
// front and re-armed from there when it fires (entries touched meanwhile are not due).
//
// Quiet entries: an entry that has had no activity for quiet_ms() (a few seconds, less
// than its timeout) gets on_quiet() once, until its next activity: a relay frees its
// empty buffers then. The quiet ones are a prefix of each list, so each sweep starts
// where the last one stopped.
//
// A sweep expires at most `max_per_sweep` entries, so a burst of idle connections does
// not hold the loop for long; the rest are expired in a sweep on the next loop turn.
//
// Ownership: one per worker event loop (gateway/worker.h), single-threaded. Entries
// belong to their connections and leave the list when they are destroyed (or removed);
// an entry still listed when the IdleTimeouts goes is only unlinked.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "proxy/libevent_ptr.h"

namespace wsgate::proxy {

class IdleTimeouts {
 public:
  // Milliseconds on the loop's cached clock (event_base_gettimeofday_cached).
  using Clock = std::function<int64_t()>;
  struct List;

  class Entry {
   public:
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    bool listed() const { return list_ != nullptr; }

   protected:
    virtual ~Entry();

   private:
    friend class IdleTimeouts;
    // The deadline passed: the entry is off the list already (add() it again to re-arm).
    virtual void on_idle_timeout() = 0;
    // No activity for quiet_ms(); once until the next touch().
    virtual void on_quiet() {}

    List* list_ = nullptr;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
    int64_t last_ms_ = 0;
  };

  explicit IdleTimeouts(event_base* base, std::size_t max_per_sweep = 512, Clock clock = {});
  ~IdleTimeouts();
  IdleTimeouts(const IdleTimeouts&) = delete;
  IdleTimeouts& operator=(const IdleTimeouts&) = delete;

  int64_t now_ms() const;
  static int64_t to_ms(const timeval& tv) { return tv.tv_sec * 1000LL + tv.tv_usec / 1000; }

  // Starts (or restarts) `e`'s deadline: `timeout_ms` (> 0) from now.
  void add(Entry& e, int64_t timeout_ms);
  // Activity on `e` at `now_ms` (the caller's reading of now_ms()): its deadline moves.
  void touch(Entry& e, int64_t now_ms);
  void remove(Entry& e);

  std::size_t size() const { return size_; }
  // How long an entry with `timeout_ms` stays active before on_quiet().
  static int64_t quiet_ms(int64_t timeout_ms);

  // The timer's work, public for tests: expires what is due at now_ms() (at most
  // max_per_sweep), tells newly quiet entries, and re-arms the timer. Returns how many
  // entries expired.
  std::size_t sweep();
  // When the timer is armed for (now_ms() + its delay); -1 when not armed.
  int64_t armed_for() const { return armed_for_; }

 private:
  List& list_for(int64_t timeout_ms);
  static void unlink(Entry& e);
  static void push_back(List& l, Entry& e);
  void arm_for(int64_t deadline_ms, int64_t now);
  void rearm(int64_t now);

  event_base* base_;
  std::size_t max_per_sweep_;
  Clock clock_;
  std::vector<std::unique_ptr<List>> lists_;  // one per distinct timeout; few
  std::size_t size_ = 0;
  int64_t armed_for_ = -1;
  Timer timer_;
};

}  // namespace wsgate::proxy
