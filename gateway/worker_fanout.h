// The main thread's one way to reach every worker (Worker::post underneath; nothing on
// the data path): broadcast() runs a job on each worker's own thread and returns at
// once; gather() runs a job that answers and waits for the answers until a deadline. On
// a worker that has already exited (drained) gather() runs the job on the calling thread:
// nothing runs on the worker's thread any more.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "gateway/worker.h"
#include "gateway/worker_replies.h"

namespace wsgate::gateway {

using Workers = std::vector<std::unique_ptr<Worker>>;

// `job(Worker&)` on every worker's thread. `job` is copied once per worker.
template <class Job>
void broadcast(const Workers& workers, const Job& job) {
  for (const auto& w : workers) {
    Worker* worker = w.get();
    worker->post([worker, job] { job(*worker); });
  }
}

// `job(Worker&) -> T` on every worker's thread; one answer per worker, in worker order,
// nullopt for those that missed `deadline`.
template <class T, class Job>
std::vector<std::optional<T>> gather(const Workers& workers, const Job& job,
                                     std::chrono::steady_clock::time_point deadline) {
  auto replies = std::make_shared<WorkerReplies<T>>(workers.size());
  for (std::size_t i = 0; i < workers.size(); ++i) {
    Worker* worker = workers[i].get();
    if (worker->finished()) {
      replies->deliver(i, job(*worker));
      continue;
    }
    worker->post([worker, replies, i, job] { replies->deliver(i, job(*worker)); });
  }
  return replies->wait(deadline);
}

}  // namespace wsgate::gateway
