// The Prometheus text exposition of a merged snapshot.
#include <doctest/doctest.h>

#include <string>

#include "metrics/exposition.h"
#include "metrics/metric_names.h"

using namespace wsgate::metrics;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

ScrapeInfo two_workers() {
  ScrapeInfo info;
  info.workers = 2;
  return info;
}

std::string render(const MetricsSnapshot& s, const ScrapeInfo& info = two_workers(),
                   const std::optional<ProcessStats>& p = std::nullopt) {
  return render_text(build_families(s, info, p));
}

}  // namespace

TEST_CASE("connections are exposed with all five labels") {
  WorkerMetrics w;
  w.relay_started({"public", "chat", "echo", "127.0.0.1:9001", Protocol::H1}, 0.003);
  const std::string text = render(w.totals());
  CHECK(has_line(
      text,
      R"(wsgate_connections_active{listener="public",route="chat",upstream="echo",server="127.0.0.1:9001",protocol="h1"} 1)"));
  CHECK(has_line(
      text,
      R"(wsgate_connections_total{listener="public",route="chat",upstream="echo",server="127.0.0.1:9001",protocol="h1"} 1)"));
  CHECK(has_line(text, "# TYPE wsgate_connections_active gauge"));
  CHECK(has_line(text, "# TYPE wsgate_connections_total counter"));
  CHECK(has_line(text, "wsgate_workers 2"));
  CHECK(has_line(text, "wsgate_scrape_workers_missing 0"));
}

TEST_CASE("handshakes by status, 'none' for a client that left first") {
  WorkerMetrics w;
  w.handshake_answered("l", 101);
  w.handshake_answered("l", 426);
  w.handshake_answered("l", 0);
  const std::string text = render(w.totals());
  CHECK(has_line(text, R"(wsgate_handshakes_total{listener="l",status="101"} 1)"));
  CHECK(has_line(text, R"(wsgate_handshakes_total{listener="l",status="426"} 1)"));
  CHECK(has_line(text, R"(wsgate_handshakes_total{listener="l",status="none"} 1)"));
}

TEST_CASE("traffic by direction and opcode, closes by side and code") {
  MetricsSnapshot s;
  s.client_to_upstream.count_frame(0x1, 6);
  s.client_to_upstream.count_payload(0x1, 94);
  s.client_to_upstream.count_message(0x1);
  s.upstream_to_client.count_frame(0x2, 4);
  s.upstream_to_client.count_payload(0x2, 300);
  s.upstream_to_client.count_message(0x2);
  s.upstream_to_client.count_frame(0xA, 2);
  s.closes[{Side::Gateway, "1009"}] = 2;
  const std::string text = render(s);
  CHECK(has_line(text, R"(wsgate_frames_total{direction="client_to_upstream",opcode="text"} 1)"));
  CHECK(has_line(text, R"(wsgate_bytes_total{direction="client_to_upstream",opcode="text"} 100)"));
  CHECK(
      has_line(text, R"(wsgate_bytes_total{direction="upstream_to_client",opcode="binary"} 304)"));
  CHECK(has_line(text, R"(wsgate_frames_total{direction="upstream_to_client",opcode="pong"} 1)"));
  CHECK(has_line(text, R"(wsgate_messages_total{direction="client_to_upstream",opcode="text"} 1)"));
  CHECK(
      has_line(text, R"(wsgate_messages_total{direction="upstream_to_client",opcode="binary"} 1)"));
  CHECK(has_line(text, R"(wsgate_messages_total{direction="upstream_to_client",opcode="text"} 0)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="gateway",code="1009"} 2)"));
}

TEST_CASE("close codes a peer chooses are bucketed, so the series stay bounded") {
  // Issue 14 item 8: a peer may send any code; only RFC 6455 7.4.1 (and the IANA
  // registry's 1012-1014) codes are labelled as themselves.
  WorkerMetrics w;
  auto end = [&w](Side side, uint16_t code) {
    ConnectionStats st;
    st.closed_by = side;
    st.close_code = code;
    w.relay_ended(nullptr, "-", st, 1.0);
  };
  for (uint32_t code = 0; code <= 65535; code += 1) end(Side::Client, static_cast<uint16_t>(code));
  end(Side::Gateway, 1009);
  const std::string text = render(w.totals());
  std::size_t series = 0;
  for (std::size_t at = text.find("\nwsgate_closes_total{"); at != std::string::npos;
       at = text.find("\nwsgate_closes_total{", at + 1))
    ++series;
  CHECK(series <= 20);
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="1000"} 1)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="1006"} 1)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="1011"} 1)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="1014"} 1)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="registered"} 1000)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="private"} 1000)"));
  // 0-999, 1004, 1016-2999, 5000-65535: codes no Close frame may carry (RFC 6455 7.4.2).
  CHECK(has_line(text, R"(wsgate_closes_total{side="client",code="invalid"} 63521)"));
  CHECK(has_line(text, R"(wsgate_closes_total{side="gateway",code="1009"} 1)"));
  CHECK(close_code_label(4999) == "private");
  CHECK(close_code_label(3000) == "registered");
  CHECK(close_code_label(1004) == "invalid");
  CHECK(close_code_label(1015) == "1015");
}

TEST_CASE("histograms are cumulative and end with +Inf") {
  MetricsSnapshot s;
  observe(s.handshake_duration, "chat", wsgate::metrics::names::kHandshakeBuckets,
          0.0007);  // le=0.001
  observe(s.handshake_duration, "chat", wsgate::metrics::names::kHandshakeBuckets, 0.2);  // 0.25
  observe(s.handshake_duration, "chat", wsgate::metrics::names::kHandshakeBuckets, 60);   // +Inf
  observe(s.handshake_duration, "feed", wsgate::metrics::names::kHandshakeBuckets, 0.003);
  const std::string text = render(s);
  CHECK(has_line(text, "# TYPE wsgate_handshake_duration_seconds histogram"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_bucket{route="chat",le="0.0005"} 0)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_bucket{route="chat",le="0.001"} 1)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_bucket{route="chat",le="0.1"} 1)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_bucket{route="chat",le="0.25"} 2)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_bucket{route="chat",le="5"} 2)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_bucket{route="chat",le="+Inf"} 3)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_count{route="chat"} 3)"));
  CHECK(has_line(text, R"(wsgate_handshake_duration_seconds_count{route="feed"} 1)"));
}

TEST_CASE("upstream connect families: every reason and the retries per upstream seen") {
  WorkerMetrics w;
  w.upstream_connected("echo", 0.0003);
  w.upstream_connect_failed("dead", "connect");
  const std::string text = render(w.totals());
  CHECK(has_line(
      text, R"(wsgate_upstream_connect_duration_seconds_bucket{upstream="echo",le="0.00025"} 0)"));
  CHECK(has_line(
      text, R"(wsgate_upstream_connect_duration_seconds_bucket{upstream="echo",le="0.0005"} 1)"));
  CHECK(has_line(text,
                 R"(wsgate_upstream_connect_failures_total{upstream="dead",reason="connect"} 1)"));
  CHECK(
      has_line(text, R"(wsgate_upstream_connect_failures_total{upstream="echo",reason="tls"} 0)"));
  CHECK(has_line(text, R"(wsgate_upstream_connect_retries_total{upstream="dead"} 0)"));
  CHECK(has_line(text, R"(wsgate_upstream_connect_retries_total{upstream="echo"} 0)"));
}

TEST_CASE("upstream pool families: idle gauge, hits, misses and every close reason") {
  WorkerMetrics w;
  UpstreamPoolStats& pool = w.upstream_pool("app", "127.0.0.1:9001");
  pool.idle = 2;
  pool.hits = 5;
  pool.misses = 3;
  pool.closes[0] = 1;  // timeout
  const std::string text = render(w.totals());
  CHECK(has_line(text, "# TYPE wsgate_upstream_idle_connections gauge"));
  CHECK(has_line(text,
                 R"(wsgate_upstream_idle_connections{upstream="app",server="127.0.0.1:9001"} 2)"));
  CHECK(has_line(text,
                 R"(wsgate_upstream_pool_hits_total{upstream="app",server="127.0.0.1:9001"} 5)"));
  CHECK(has_line(text,
                 R"(wsgate_upstream_pool_misses_total{upstream="app",server="127.0.0.1:9001"} 3)"));
  CHECK(has_line(
      text,
      R"(wsgate_upstream_idle_closes_total{upstream="app",server="127.0.0.1:9001",reason="timeout"} 1)"));
  CHECK(has_line(
      text,
      R"(wsgate_upstream_idle_closes_total{upstream="app",server="127.0.0.1:9001",reason="evicted"} 0)"));
}

TEST_CASE("certificate expiry gauge by listener and file") {
  ScrapeInfo info;
  const std::vector<CertificateExpiry> certs{{"public", "/etc/wsgate/a.pem", 1893456000}};
  info.certificates = certs;
  const std::string text = render_text(build_families(MetricsSnapshot{}, info, std::nullopt));
  CHECK(has_line(
      text,
      R"(wsgate_tls_certificate_expiry_timestamp_seconds{listener="public",cert="/etc/wsgate/a.pem"} 1893456000)"));
}

TEST_CASE("process metrics appear when /proc was read") {
  ProcessStats p;
  p.cpu_seconds = 1.5;
  p.resident_bytes = 4096;
  p.open_fds = 12;
  p.max_fds = 1024;
  ScrapeInfo info;
  info.workers = 1;
  info.workers_missing = 1;
  const std::string text = render({}, info, p);
  CHECK(has_line(text, "process_cpu_seconds_total 1.5"));
  CHECK(has_line(text, "process_resident_memory_bytes 4096"));
  CHECK(has_line(text, "process_open_fds 12"));
  CHECK(has_line(text, "wsgate_scrape_workers_missing 1"));
  CHECK(render({}).find("process_") == std::string::npos);
}

TEST_CASE("/proc/self/stat parsing survives odd command names") {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss
  const std::string stat =
      "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 123456 10 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
  const auto p = parse_proc_stat(stat, 100, 4096, 1700000000);
  REQUIRE(p.has_value());
  CHECK(p->cpu_seconds == doctest::Approx(3.0));
  CHECK(p->threads == 3);
  CHECK(p->start_time_seconds == doctest::Approx(1700000010.0));
  CHECK(p->virtual_bytes == 123456);
  CHECK(p->resident_bytes == 40960);
  CHECK_FALSE(parse_proc_stat("garbage", 100, 4096, 0).has_value());
  CHECK(read_process_stats().has_value());
}

TEST_CASE("backend servers: up, connections and health transitions") {
  const std::vector<UpstreamServerStatus> servers = {{"echo", "127.0.0.1:9001", true, 3, 1, 1},
                                                     {"echo", "127.0.0.1:9002", false, 0, 0, 2}};
  ScrapeInfo info = two_workers();
  info.upstream_servers = servers;
  const std::string text = render(MetricsSnapshot{}, info);
  CHECK(has_line(text, "# TYPE wsgate_upstream_server_up gauge"));
  CHECK(has_line(text, "# TYPE wsgate_upstream_server_connections gauge"));
  CHECK(has_line(text, "# TYPE wsgate_upstream_server_health_transitions_total counter"));
  CHECK(has_line(text, R"(wsgate_upstream_server_up{upstream="echo",server="127.0.0.1:9001"} 1)"));
  CHECK(has_line(text, R"(wsgate_upstream_server_up{upstream="echo",server="127.0.0.1:9002"} 0)"));
  CHECK(has_line(
      text, R"(wsgate_upstream_server_connections{upstream="echo",server="127.0.0.1:9001"} 3)"));
  CHECK(has_line(
      text, R"(wsgate_upstream_server_connections{upstream="echo",server="127.0.0.1:9002"} 0)"));
  CHECK(has_line(
      text,
      R"(wsgate_upstream_server_health_transitions_total{upstream="echo",server="127.0.0.1:9001",to="up"} 1)"));
  CHECK(has_line(
      text,
      R"(wsgate_upstream_server_health_transitions_total{upstream="echo",server="127.0.0.1:9002",to="down"} 2)"));
  CHECK(has_line(
      text,
      R"(wsgate_upstream_server_health_transitions_total{upstream="echo",server="127.0.0.1:9002",to="up"} 0)"));
}

namespace {

ConnectionInfo relayed(uint64_t id, double age, uint64_t c2u_bytes, uint64_t u2c_bytes) {
  ConnectionInfo c;
  c.worker = 1;
  c.id = id;
  c.state = "relaying";
  c.labels = {"public", "chat", "echo", "127.0.0.1:9001", Protocol::H1};
  c.age_seconds = age;
  c.client_to_upstream.bytes = c2u_bytes;
  c.client_to_upstream.messages = 2;
  c.upstream_to_client.bytes = u2c_bytes;
  c.upstream_to_client.messages = 1;
  return c;
}

}  // namespace

TEST_CASE("per-connection series: the oldest relayed connections up to the cap") {
  std::vector<ConnectionInfo> rows = {relayed(7, 1.0, 10, 20), relayed(3, 5.0, 30, 40),
                                      relayed(9, 0.5, 50, 60)};
  ConnectionInfo handshaking;
  handshaking.state = "reading_head";
  handshaking.age_seconds = 100;  // oldest, but not relayed: no series, not dropped
  rows.push_back(handshaking);
  ScrapeInfo info = two_workers();
  info.connections = &rows;
  info.per_connection_limit = 2;
  const std::string text = render(MetricsSnapshot{}, info);
  CHECK(has_line(text, "# TYPE wsgate_connection_bytes_total counter"));
  CHECK(has_line(text, "# TYPE wsgate_connection_messages_total counter"));
  CHECK(has_line(text, "# TYPE wsgate_connection_series_dropped gauge"));
  CHECK(has_line(
      text,
      R"(wsgate_connection_bytes_total{id="1-3",route="chat",server="127.0.0.1:9001",direction="client_to_upstream"} 30)"));
  CHECK(has_line(
      text,
      R"(wsgate_connection_bytes_total{id="1-3",route="chat",server="127.0.0.1:9001",direction="upstream_to_client"} 40)"));
  CHECK(has_line(
      text,
      R"(wsgate_connection_bytes_total{id="1-7",route="chat",server="127.0.0.1:9001",direction="client_to_upstream"} 10)"));
  CHECK(has_line(
      text,
      R"(wsgate_connection_messages_total{id="1-7",route="chat",server="127.0.0.1:9001",direction="client_to_upstream"} 2)"));
  CHECK(has_line(
      text,
      R"(wsgate_connection_messages_total{id="1-7",route="chat",server="127.0.0.1:9001",direction="upstream_to_client"} 1)"));
  CHECK(text.find(R"(id="1-9")") == std::string::npos);  // the youngest is over the cap
  CHECK(text.find(R"(id="1-0")") == std::string::npos);  // the handshaking one
  CHECK(has_line(text, "wsgate_connection_series_dropped 1"));
}

TEST_CASE("per-connection series are absent unless asked for") {
  const std::string text = render(MetricsSnapshot{});
  CHECK(text.find("wsgate_connection_bytes_total") == std::string::npos);
  CHECK(text.find("wsgate_connection_messages_total") == std::string::npos);
  CHECK(text.find("wsgate_connection_series_dropped") == std::string::npos);
}
