// A worker thread's event loop and nothing else: the event_base, the thread that runs
// it, the mailbox other threads post() to (the only lock, taken only by post() and the
// wakeup handler), and the one list of objects whose destruction waits for the end of
// the current loop iteration (their callbacks may still be on the stack).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

class Dispatcher {
 public:
  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  event_base* base() const { return base_.get(); }

  // Runs the loop on a new thread (signals blocked: they belong to the main thread)
  // until stop(); then `after_loop` on that thread, then finished() turns true.
  void start(std::function<void()> after_loop);
  void join();
  // Thread-safe: the loop has exited and `after_loop` has run.
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  // The loop exits after the current iteration.
  void stop();

  // Thread-safe: runs `fn` on the loop's thread, soon.
  void post(std::function<void()> fn);

  // Destroys `object` at the end of the current loop iteration, then runs the
  // after-reap hook (the worker checks whether a drain has finished).
  template <typename T>
  void defer_delete(std::unique_ptr<T> object) {
    if (!object) return;
    // No shared_ptr control block per object: a pointer and its deleter.
    deferred_.push_back({object.release(), [](void* p) { delete static_cast<T*>(p); }});
    schedule_reap();
  }
  bool nothing_deferred() const { return deferred_.empty(); }
  void set_after_reap(std::function<void()> fn) { after_reap_ = std::move(fn); }
  // Teardown: destroys everything deferred, including what those destructors defer.
  void destroy_deferred();

 private:
  static void on_wakeup(evutil_socket_t fd, short what, void* arg);
  static void on_reap(evutil_socket_t fd, short what, void* arg);
  void schedule_reap();
  // Destroys the objects deferred so far; what their destructors defer waits.
  void reap_once();

  struct Deferred {
    void* object;
    void (*destroy)(void*);
  };
  EventBasePtr base_;
  // Both lists keep their capacity from one reap to the next: no allocation per object.
  std::vector<Deferred> deferred_;
  std::vector<Deferred> reaping_;
  EventPtr reap_event_;
  std::function<void()> after_reap_;
  int wake_fd_ = -1;  // eventfd
  EventPtr wake_event_;
  std::mutex mailbox_mutex_;
  std::vector<std::function<void()>> mailbox_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
};

}  // namespace wsgate::gateway
