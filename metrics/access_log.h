// The access log: one line per finished connection, as logfmt (the default), e.g.
//   access ts=2026-11-21T20:00:00.000Z client=127.0.0.1:51000 listener=127.0.0.1:8080
//   route=echo upstream=127.0.0.1:9001 status=101 duration_ms=5012 c2u_bytes=210
//   c2u_msgs=3 u2c_bytes=204 u2c_msgs=3 close_code=1000 closed_by=client proto=http/1.1
//   path=/echo host=example.org user_agent="..." origin=https://example.org
//   subprotocol=chat request_id=0f3c... reason="..."
// or as one JSON object per line with the same keys (access_log_format = "json").
// Shared by all workers: the file is opened once (O_APPEND) and each line is a single
// write(2), so no lock is needed. reopen() (SIGUSR1, for log rotation) swaps the file
// under the same descriptor number with dup2(2), so a worker writing at that moment
// writes whole lines to either the old or the new file.
#pragma once

#include <string>
#include <string_view>

#include "metrics/connection_stats.h"

namespace wsgate::metrics {

struct AccessRecord {
  std::string_view client;  // "ip:port"
  std::string_view listener;
  std::string_view route;     // "-" when no route matched
  std::string_view upstream;  // "-" when no upstream was reached
  int status = 0;             // what the client got; 0 when it left before any answer
  long long duration_ms = 0;
  const ConnectionStats* stats = nullptr;  // null when the connection never relayed
  std::string_view reason;                 // why it ended, when the gateway decided
  std::string_view tls_version;            // "TLSv1.3"; empty on plain connections
  std::string_view client_subject;         // verified client certificate subject, if any
  std::string_view protocol;               // "http/1.1" or "h2"; empty: not shown
  std::string_view target;                 // CONNECT tunnels: "host:port" asked for
  std::string_view user;                   // CONNECT tunnels: the proxy user, if any
  // The client came through a PROXY protocol balancer or a trusted proxy: that peer's
  // "ip:port", and the SNI / ALPN a PROXY v2 header reported. Empty: not shown.
  std::string_view via;
  std::string_view proxy_sni;
  std::string_view proxy_alpn;
  // Forwarded HTTP requests: the method; `stats` counts body bytes each way and has no
  // close code.
  bool http = false;
  std::string_view method;
  // The request as routed (WebSocket handshakes and forwarded requests; empty: not
  // shown): path (as sent upstream), Host / :authority, User-Agent, Origin, the
  // subprotocol the upstream chose, and the request id (also the upstream's X-Request-Id).
  std::string_view path;
  std::string_view host;
  std::string_view user_agent;
  std::string_view origin;
  std::string_view subprotocol;
  std::string_view request_id;
};

enum class AccessLogFormat { Text, Json };

std::string format_access_line(const AccessRecord& r);
std::string format_access_json(const AccessRecord& r);

class AccessLog {
 public:
  // `target`: "-" stdout, "stderr" stderr, "" off, otherwise a file path opened for appending.
  // Returns false (with errno set) when the file cannot be opened.
  bool open(const std::string& target, AccessLogFormat format = AccessLogFormat::Text);
  // Reopens the file by its path (after a rotation moved it away). Main thread only;
  // a no-op for stdout or when off. Returns false (errno set) if the path cannot be
  // opened; the old file stays in use then.
  bool reopen();
  ~AccessLog();
  void write(const AccessRecord& r) const;
  bool enabled() const { return fd_ >= 0; }

 private:
  int fd_ = -1;  // never changes after open(): reopen() dup2()s onto it
  bool owned_ = false;
  std::string path_;
  AccessLogFormat format_ = AccessLogFormat::Text;
};

}  // namespace wsgate::metrics
