#include "metrics/admin/connection_table.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace wsgate::metrics {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_number(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.3f", v);
  out.append(buf, static_cast<std::size_t>(n));
}

void key(std::string& out, std::string_view k) {
  out += '"';
  out += k;
  out += "\":";
}

void direction_json(std::string& out, const DirectionStats& d) {
  out += '{';
  key(out, "bytes");
  out += std::to_string(d.bytes);
  out += ',';
  key(out, "frames");
  out += std::to_string(d.frames);
  out += ',';
  key(out, "messages");
  out += std::to_string(d.messages);
  out += ',';
  key(out, "pings");
  out += std::to_string(d.pings);
  out += ',';
  key(out, "pongs");
  out += std::to_string(d.pongs);
  out += '}';
}

void pings_json(std::string& out, const PingStats& p) {
  out += '{';
  key(out, "sent");
  out += std::to_string(p.sent);
  out += ',';
  key(out, "answered");
  out += std::to_string(p.answered);
  const std::pair<std::string_view, uint64_t> rtts[] = {
      {"last_rtt_ms", p.last_rtt_us}, {"min_rtt_ms", p.min_rtt_us}, {"max_rtt_ms", p.max_rtt_us}};
  for (const auto& [k, us] : rtts) {
    out += ',';
    key(out, k);
    append_number(out, static_cast<double>(us) / 1000.0);
  }
  out += '}';
}

void row_json(std::string& out, const ConnectionInfo& c) {
  out += '{';
  key(out, "id");
  append_json_string(out, std::to_string(c.worker) + "-" + std::to_string(c.id));
  out += ',';
  key(out, "worker");
  out += std::to_string(c.worker);
  const std::pair<std::string_view, const std::string*> strings[] = {
      {"client", &c.client},
      {"state", &c.state},
      {"listener", &c.labels.listener},
      {"route", &c.labels.route},
      {"upstream", &c.labels.upstream},
      {"server", &c.labels.server},
      {"subprotocol", &c.subprotocol},
      {"target", &c.target},
      {"tls", &c.tls}};
  for (const auto& [k, v] : strings) {
    out += ',';
    key(out, k);
    append_json_string(out, *v);
  }
  out += ',';
  key(out, "protocol");
  append_json_string(out, to_string(c.labels.protocol));
  out += ',';
  key(out, "age_seconds");
  append_number(out, c.age_seconds);
  out += ',';
  key(out, "idle_seconds");
  append_number(out, c.idle_seconds);
  out += ',';
  key(out, "last_activity_unix");
  append_number(out, c.last_activity_unix);
  out += ',';
  key(out, "client_to_upstream");
  direction_json(out, c.client_to_upstream);
  out += ',';
  key(out, "upstream_to_client");
  direction_json(out, c.upstream_to_client);
  out += ',';
  key(out, "buffered_bytes");
  out += std::to_string(c.buffered_bytes);
  out += ',';
  key(out, "pings");
  out += "{";
  key(out, "client");
  pings_json(out, c.client_pings);
  out += ',';
  key(out, "upstream");
  pings_json(out, c.upstream_pings);
  out += "}}";
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string for_each_query_parameter(
    std::string_view query, const std::function<std::string(std::string_view, std::string)>& fn) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    std::string error =
        fn(pair.substr(0, eq),
           eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1)));
    if (!error.empty()) return error;
  }
  return {};
}

std::string parse_connection_filter(std::string_view query, ConnectionFilter& out) {
  return for_each_query_parameter(query, [&out](std::string_view name, std::string value) {
    if (name == "route") {
      out.route = std::move(value);
    } else if (name == "server") {
      out.server = std::move(value);
    } else if (name == "limit") {
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size())
        return "limit: expected a non-negative integer, got \"" + value + "\"";
      out.limit = n;
    } else {
      return "unknown parameter \"" + std::string(name) + "\" (allowed: route, server, limit)";
    }
    return std::string();
  });
}

std::string connections_json(std::vector<ConnectionInfo> rows, const ConnectionFilter& filter) {
  std::erase_if(rows, [&filter](const ConnectionInfo& c) {
    return (!filter.route.empty() && c.labels.route != filter.route) ||
           (!filter.server.empty() && c.labels.server != filter.server);
  });
  std::sort(rows.begin(), rows.end(), [](const ConnectionInfo& a, const ConnectionInfo& b) {
    return a.age_seconds > b.age_seconds;
  });
  const std::size_t shown = std::min(rows.size(), filter.limit);
  std::string out = "{\"count\":" + std::to_string(rows.size()) +
                    ",\"returned\":" + std::to_string(shown) + ",\"connections\":[";
  out.reserve(out.size() + shown * 600);
  for (std::size_t i = 0; i < shown; ++i) {
    if (i != 0) out += ',';
    row_json(out, rows[i]);
  }
  out += "]}\n";
  return out;
}

}  // namespace wsgate::metrics
