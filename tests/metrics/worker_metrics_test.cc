// Per-worker counters and their merge across workers.
#include <doctest/doctest.h>

#include "metrics/worker_metrics.h"

using namespace wsgate::metrics;

namespace {

ConnectionLabels labels(const std::string& route, const std::string& server) {
  return {"public", route, "echo", server, Protocol::H1};
}

ConnectionStats traffic(uint64_t text_msgs, uint64_t bytes_per_msg) {
  ConnectionStats s;
  for (uint64_t i = 0; i < text_msgs; ++i) {
    s.client_to_upstream.count_frame(0x1, 6);
    s.client_to_upstream.count_payload(0x1, bytes_per_msg);
    s.client_to_upstream.count_message(0x1);
    s.upstream_to_client.count_frame(0x1, 2);
    s.upstream_to_client.count_payload(0x1, bytes_per_msg);
    s.upstream_to_client.count_message(0x1);
  }
  return s;
}

}  // namespace

TEST_CASE("direction stats count frames, bytes and messages by opcode") {
  DirectionStats d;
  d.count_frame(0x2, 10);     // binary frame header, FIN=0
  d.count_payload(0x2, 100);  //   and its payload
  d.count_frame(0x9, 8);      // a ping between fragments
  d.count_frame(0x0, 2);      // continuation
  d.count_payload(0x0, 50);
  d.count_message(0x2);  // the message ends: binary
  CHECK(d.frames == 3);
  CHECK(d.bytes == 170);
  CHECK(d.messages == 1);
  CHECK(d.binary_messages == 1);
  CHECK(d.text_messages == 0);
  CHECK(d.pings == 1);
  CHECK(d.frames_by_opcode[static_cast<std::size_t>(OpcodeSlot::Binary)] == 1);
  CHECK(d.frames_by_opcode[static_cast<std::size_t>(OpcodeSlot::Continuation)] == 1);
  CHECK(d.frames_by_opcode[static_cast<std::size_t>(OpcodeSlot::Ping)] == 1);
  CHECK(d.bytes_by_opcode[static_cast<std::size_t>(OpcodeSlot::Binary)] == 110);
  CHECK(d.bytes_by_opcode[static_cast<std::size_t>(OpcodeSlot::Continuation)] == 52);
  CHECK(d.bytes_by_opcode[static_cast<std::size_t>(OpcodeSlot::Ping)] == 8);
}

TEST_CASE("a worker counts handshakes, gauges and ended connections") {
  WorkerMetrics w;
  w.handshake_answered("public", 101);
  w.handshake_answered("public", 101);
  w.handshake_answered("public", 404);
  w.handshake_answered("public", 0);
  ConnectionCounts* a = w.relay_started(labels("chat", "10.0.0.1:9000"), 0.002);
  ConnectionCounts* b = w.relay_started(labels("chat", "10.0.0.1:9000"), 0.004);
  CHECK(a == b);  // same labels, same series
  CHECK(a->active == 2);
  CHECK(a->total == 2);

  ConnectionStats s = traffic(3, 100);
  s.closed_by = Side::Client;
  s.close_code = 1000;
  w.relay_ended(a, "chat", s, 12.5);

  const MetricsSnapshot& t = w.totals();
  CHECK(t.connections.at(labels("chat", "10.0.0.1:9000")).active == 1);
  CHECK(t.connections.at(labels("chat", "10.0.0.1:9000")).total == 2);
  CHECK(t.handshakes.at({"public", 101}) == 2);
  CHECK(t.handshakes.at({"public", 404}) == 1);
  CHECK(t.handshakes.at({"public", 0}) == 1);
  CHECK(t.client_to_upstream.messages == 3);
  CHECK(t.client_to_upstream.bytes == 318);
  CHECK(t.upstream_to_client.bytes == 306);
  CHECK(t.closes.at({Side::Client, "1000"}) == 1);
  CHECK(t.handshake_duration.at("chat").count() == 2);
  CHECK(t.connection_duration.at("chat").count() == 1);
  CHECK(t.connection_duration.at("chat").sum() == doctest::Approx(12.5));

  // A tunnel counts how it ended, not a close code.
  ConnectionStats tunnel;
  tunnel.closed_by = Side::Client;
  tunnel.tunnel_end = TunnelEnd::ClientReset;
  w.relay_ended(b, "chat", tunnel, 1.0);
  CHECK(t.tunnel_ends[static_cast<std::size_t>(TunnelEnd::ClientReset)] == 1);
  CHECK(t.closes.size() == 1);
}

TEST_CASE("snapshots of several workers merge into exact sums") {
  WorkerMetrics w0, w1;
  ConnectionCounts* c0 = w0.relay_started(labels("chat", "s1:1"), 0.001);
  w1.relay_started(labels("chat", "s1:1"), 0.001);
  w1.relay_started(labels("feed", "s2:1"), 0.3);
  ConnectionStats ended = traffic(2, 10);
  ended.closed_by = Side::Upstream;
  ended.close_code = 1011;
  w0.relay_ended(c0, "chat", ended, 1.0);
  w0.handshake_answered("public", 101);
  w1.handshake_answered("public", 101);
  w1.handshake_answered("public", 101);

  // Worker 1 has a live connection whose traffic is added at scrape time.
  MetricsSnapshot s1 = w1.totals();
  s1.add_traffic(traffic(5, 10));

  MetricsSnapshot all;
  all.merge(w0.totals());
  all.merge(s1);
  CHECK(all.connections.at(labels("chat", "s1:1")).active == 1);
  CHECK(all.connections.at(labels("chat", "s1:1")).total == 2);
  CHECK(all.connections.at(labels("feed", "s2:1")).active == 1);
  CHECK(all.handshakes.at({"public", 101}) == 3);
  CHECK(all.client_to_upstream.messages == 7);
  CHECK(all.upstream_to_client.text_messages == 7);
  CHECK(all.client_to_upstream.bytes == 7 * 16);
  CHECK(all.closes.at({Side::Upstream, "1011"}) == 1);
  // By route: chat 0.001 twice (le=0.001), feed 0.3 once (le=0.5).
  CHECK(all.handshake_duration.size() == 2);
  CHECK(all.handshake_duration.at("chat").count() == 2);
  CHECK(all.handshake_duration.at("chat").counts()[1] == 2);
  CHECK(all.handshake_duration.at("feed").count() == 1);
  CHECK(all.handshake_duration.at("feed").counts()[9] == 1);
}

TEST_CASE("histogram buckets are upper-inclusive, with +Inf last") {
  static constexpr double kBounds[] = {1, 2};
  Histogram h(kBounds);
  h.observe(0.5);
  h.observe(1.0);
  h.observe(1.5);
  h.observe(100);
  CHECK(h.counts() == std::vector<uint64_t>{2, 1, 1});
  CHECK(h.count() == 4);
  CHECK(h.sum() == doctest::Approx(103));
}

TEST_CASE("upstream connects: latency by upstream, failures by reason, retries") {
  WorkerMetrics w0, w1;
  w0.upstream_connected("echo", 0.0004);
  w1.upstream_connected("echo", 0.02);
  w1.upstream_connected("feed", 0.001);
  w0.upstream_connect_failed("echo", "connect");
  w1.upstream_connect_failed("echo", "connect");
  w1.upstream_connect_failed("echo", "connect_timeout");
  w0.upstream_retry("echo");
  MetricsSnapshot all;
  all.merge(w0.totals());
  all.merge(w1.totals());
  CHECK(all.upstream_connect_duration.at("echo").count() == 2);
  CHECK(all.upstream_connect_duration.at("echo").sum() == doctest::Approx(0.0204));
  CHECK(all.upstream_connect_duration.at("feed").count() == 1);
  CHECK(all.upstream_connect_failures.at({"echo", "connect"}) == 2);
  CHECK(all.upstream_connect_failures.at({"echo", "connect_timeout"}) == 1);
  CHECK(all.upstream_connect_retries.at("echo") == 1);
}

TEST_CASE("upstream pool stats add up across workers") {
  WorkerMetrics w0, w1;
  w0.upstream_pool("app", "a:1").idle = 1;
  w0.upstream_pool("app", "a:1").hits = 2;
  w1.upstream_pool("app", "a:1").idle = 3;
  w1.upstream_pool("app", "a:1").closes[1] = 4;
  w1.upstream_pool("app", "b:1").misses = 1;
  MetricsSnapshot all;
  all.merge(w0.totals());
  all.merge(w1.totals());
  const UpstreamPoolStats& a = all.upstream_pools.at({"app", "a:1"});
  CHECK(a.idle == 4);
  CHECK(a.hits == 2);
  CHECK(a.closes[1] == 4);
  CHECK(all.upstream_pools.at({"app", "b:1"}).misses == 1);
}
