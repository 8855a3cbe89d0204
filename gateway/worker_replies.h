// Waiting on the main thread for one answer from each of several workers: the admin
// thread posts a job to each (Worker::post), each job delivers its answer here on its
// worker's thread, and the admin thread waits with a deadline. Shared by shared_ptr, so
// a worker that answers late writes into a collector nobody reads, never freed memory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

namespace wsgate::gateway {

template <class T>
class WorkerReplies {
 public:
  explicit WorkerReplies(std::size_t expected) : replies_(expected) {}

  // Any thread; a second answer for the same slot is ignored.
  void deliver(std::size_t slot, T value) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (slot >= replies_.size() || replies_[slot].has_value()) return;
      replies_[slot] = std::move(value);
      delivered_++;
    }
    arrived_.notify_one();
  }

  // Every slot's answer, or nullopt for those that missed `deadline`. Call once.
  std::vector<std::optional<T>> wait(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    arrived_.wait_until(lock, deadline, [this] { return delivered_ == replies_.size(); });
    return std::move(replies_);
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::optional<T>> replies_;
  std::size_t delivered_ = 0;
};

}  // namespace wsgate::gateway
