// A worker's answer to a scrape: its totals, the live connections' traffic and, when
// asked, one connection-table row per session. Built on the worker's thread, so it reads
// the sessions' plain counters without any synchronization (metrics/scrape.h).
#include "gateway/exchange/exchange.h"
#include "gateway/h1/h1_connection.h"
#include "gateway/worker.h"

namespace wsgate::gateway {

metrics::WorkerReport Worker::build_report(bool with_connections) const {
  metrics::WorkerReport report;
  report.metrics = metrics_.totals();
  if (with_connections) report.connections.reserve(registry_.size());
  for (const Exchange* e : registry_.exchanges()) {
    if (const metrics::ConnectionStats* stats = e->live_stats()) report.metrics.add_traffic(*stats);
    if (with_connections) report.connections.push_back(e->describe(index_));
  }
  // Connections whose request head is still arriving have no exchange yet.
  if (with_connections) {
    for (const H1Connection* c : registry_.connections_reading_head())
      report.connections.push_back(c->describe(index_));
  }
  return report;
}

}  // namespace wsgate::gateway
