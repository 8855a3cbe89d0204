#include "gateway/exchange/limit_refusal.h"

#include <algorithm>
#include <cstdio>

namespace wsgate::gateway {
namespace {

std::string rate_text(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", rate);
  return buf;
}

}  // namespace

http::Refusal refusal_for(const ClientLimits::Decision& decision, const conf::Limits& limits) {
  http::Refusal r;
  switch (decision.exceeded) {
    case Limit::MaxConnections:
      r.status = 503;
      r.reason =
          "connection limit reached: max_connections = " + std::to_string(limits.max_connections) +
          " for the whole gateway";
      break;
    case Limit::ClientTable:
      r.status = 503;
      r.reason = "connection limit reached: client_table_size = " +
                 std::to_string(limits.client_table_size) + " clients tracked, none free";
      break;
    case Limit::PerClient:
      r.status = 429;
      r.reason = "connection limit reached: max_connections_per_client = " +
                 std::to_string(limits.max_connections_per_client) + " for this client address";
      break;
    case Limit::Rate:
      r.status = 429;
      r.reason = "connection rate limit reached: new_connections_per_second_per_client = " +
                 rate_text(limits.new_connections_per_second_per_client) + " (burst " +
                 std::to_string(limits.new_connections_burst) + ") for this client address";
      break;
    case Limit::None:
      r.status = 500;
      r.reason = "internal error: connection not refused";
      return r;
  }
  r.fields.emplace_back("Retry-After", std::to_string(std::max(1u, decision.retry_after_s)));
  return r;
}

}  // namespace wsgate::gateway
