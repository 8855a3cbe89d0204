// The live connection table served at /connections: one row per connection a worker
// holds, built on that worker's thread at request time (a copy; nothing is shared), then
// filtered and rendered as JSON on the admin thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/connection_stats.h"
#include "metrics/text_escape.h"
#include "metrics/worker_metrics.h"

namespace wsgate::metrics {

struct ConnectionInfo {
  int worker = 0;
  uint64_t id = 0;                // per worker; "<worker>-<id>" is unique in the process
  std::string client;             // "ip:port"
  std::string state;              // the session's state ("relaying", "connecting_upstream", ...)
  ConnectionLabels labels;        // route/upstream/server are "-" until known
  std::string subprotocol;        // Sec-WebSocket-Protocol the upstream chose, "" if none
  std::string target;             // CONNECT tunnels: "host:port" asked for, else ""
  std::string tls;                // the client's TLS version ("TLSv1.3"), "" when plain
  double age_seconds = 0;         // since accept
  double idle_seconds = 0;        // since the last bytes from either side (relaying only)
  double last_activity_unix = 0;  // wall clock of those bytes, 0 before relaying
  DirectionStats client_to_upstream;
  DirectionStats upstream_to_client;
  uint64_t buffered_bytes = 0;  // waiting in both output buffers
  PingStats client_pings;       // the gateway's keepalive pings (route ping_interval)
  PingStats upstream_pings;
};

struct ConnectionFilter {
  std::string route;   // "" = any; else the route name
  std::string server;  // "" = any; else the upstream "host:port"
  std::size_t limit = 1000;
};

// Parses "route=..&server=..&limit=N" (percent-decoded). Unknown keys and a bad limit
// are errors (returned as a message; empty on success).
std::string parse_connection_filter(std::string_view query, ConnectionFilter& out);

// {"count": <rows matching>, "returned": <rows listed>, "connections": [ {...}, ... ]},
// rows sorted by age, oldest first, at most filter.limit of them.
std::string connections_json(std::vector<ConnectionInfo> rows, const ConnectionFilter& filter);

// %XX is a byte; '+' is a space in a query value (application/x-www-form-urlencoded), not
// in a path segment (plus_is_space = false).
std::string percent_decode(std::string_view s, bool plus_is_space = true);
// Calls fn(name, value) for each name=value pair of a URL query, the value
// percent-decoded ("" without '='); empty pairs are skipped. Stops at the first non-empty
// string fn returns (an error for the client) and returns it; "" when all were taken.
std::string for_each_query_parameter(
    std::string_view query, const std::function<std::string(std::string_view, std::string)>& fn);

}  // namespace wsgate::metrics
