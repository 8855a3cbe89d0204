// One scrape across threads (gateway/worker_fanout.h gathers with WorkerReplies): reports
// arrive from other threads, the deadline bounds the wait, and a late report is dropped
// safely.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "gateway/worker_replies.h"
#include "metrics/scrape.h"

using namespace wsgate::metrics;
using ScrapeCollector = wsgate::gateway::WorkerReplies<WorkerReport>;
using namespace std::chrono_literals;

namespace {

WorkerReport report_with(uint64_t messages) {
  WorkerReport r;
  for (uint64_t i = 0; i < messages; ++i) r.metrics.client_to_upstream.count_message(0x1);
  return r;
}

}  // namespace

TEST_CASE("reports from every worker are merged") {
  auto collector = std::make_shared<ScrapeCollector>(3);
  std::thread t0([collector] { collector->deliver(0, report_with(1)); });
  std::thread t1([collector] { collector->deliver(1, report_with(10)); });
  std::thread t2([collector] { collector->deliver(2, report_with(100)); });
  const auto start = std::chrono::steady_clock::now();
  const ScrapeResult r = merge_reports(collector->wait(start + 5s));
  t0.join();
  t1.join();
  t2.join();
  CHECK(std::chrono::steady_clock::now() - start < 4s);  // did not wait for the deadline
  CHECK(r.workers == 3);
  CHECK(r.workers_missing == 0);
  CHECK(r.metrics.client_to_upstream.messages == 111);
}

TEST_CASE("a worker that misses the deadline is counted missing, its late report ignored") {
  auto collector = std::make_shared<ScrapeCollector>(2);
  collector->deliver(0, report_with(5));
  collector->deliver(0, report_with(50));  // a duplicate is ignored
  const auto start = std::chrono::steady_clock::now();
  const ScrapeResult r = merge_reports(collector->wait(start + 100ms));
  CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  CHECK(r.workers == 2);
  CHECK(r.workers_missing == 1);
  CHECK(r.metrics.client_to_upstream.messages == 5);
  // The slow worker answers after the scrape is over: harmless.
  std::thread late([collector] { collector->deliver(1, report_with(7)); });
  late.join();
}

TEST_CASE("connection rows from all workers are concatenated") {
  auto collector = std::make_shared<ScrapeCollector>(2);
  WorkerReport a, b;
  a.connections.push_back({});
  a.connections.back().id = 1;
  b.connections.push_back({});
  b.connections.push_back({});
  collector->deliver(1, std::move(b));
  collector->deliver(0, std::move(a));
  const ScrapeResult r = merge_reports(collector->wait(std::chrono::steady_clock::now() + 1s));
  CHECK(r.connections.size() == 3);
}
