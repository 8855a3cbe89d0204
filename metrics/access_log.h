// The access log: one logfmt line per finished connection, e.g.
//   access ts=2026-11-21T20:00:00.000Z client=127.0.0.1:51000 listener=127.0.0.1:8080
//   route=echo upstream=127.0.0.1:9001 status=101 duration_ms=5012 c2u_bytes=210
//   c2u_msgs=3 u2c_bytes=204 u2c_msgs=3 close_code=1000 closed_by=client proto=http/1.1
//   reason="..."
// Shared by all workers: the file is opened once (O_APPEND) and each line is a single
// write(2), so no lock is needed.
#pragma once

#include <string>
#include <string_view>

#include "metrics/connection_stats.h"

namespace wsgate::metrics {

struct AccessRecord {
  std::string_view client;  // "ip:port"
  std::string_view listener;
  std::string_view route;     // "-" when no route matched
  std::string_view upstream;  // "-" when no backend was reached
  int status = 0;             // what the client got; 0 when it left before any answer
  long long duration_ms = 0;
  const ConnectionStats* stats = nullptr;  // null when the connection never relayed
  std::string_view reason;                 // why it ended, when the gateway decided
  std::string_view tls_version;            // "TLSv1.3"; empty on plain connections
  std::string_view client_subject;         // verified client certificate subject, if any
  std::string_view protocol;               // "http/1.1" or "h2"; empty: not shown
};

std::string format_access_line(const AccessRecord& r);

class AccessLog {
 public:
  // `target`: "-" stdout, "" off, otherwise a file path opened for appending.
  // Returns false (with errno set) when the file cannot be opened.
  bool open(const std::string& target);
  ~AccessLog();
  void write(const AccessRecord& r) const;
  bool enabled() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  bool owned_ = false;
};

}  // namespace wsgate::metrics
