// The worker's side of [limits]: each new connection asks the process-wide ClientLimits
// (gateway/client_limits.h) for its place, and refusals are counted per worker. A
// trusted proxy's connections are counted per request instead, by the client its
// X-Forwarded-For names (Exchange::make).
#include "gateway/worker.h"

#include "conf/address.h"
#include "gateway/exchange/forwarded_client.h"

namespace wsgate::gateway {
namespace {

ClientLimits::Decision count(metrics::WorkerMetrics& metrics, ClientLimits::Decision d) {
  if (d.refused()) metrics.limit_rejection(to_string(d.exceeded));
  return d;
}

}  // namespace

ClientLimits::Decision Worker::admit_client(const sockaddr* addr) {
  if (!client_limits_) return {};
  const conf::ConfigPtr& config = generations_.config();
  if (!config->trusted_proxies.empty() &&
      is_trusted_proxy(conf::describe(addr).ip, config->trusted_proxies))
    return {};  // counted per request, by the client it names (Exchange::make)
  const ClientKey key =
      ClientKey::from_sockaddr(addr, client_limits_->settings().client_ipv6_prefix);
  return count(metrics_, client_limits_->admit(key, ClientLimits::Clock::now()));
}

ClientLimits::Decision Worker::admit_client(std::string_view ip) {
  if (!client_limits_) return {};
  const conf::ConfigPtr& config = generations_.config();
  if (!config->trusted_proxies.empty() && is_trusted_proxy(ip, config->trusted_proxies))
    return {};  // counted per request, by the client it names (Exchange::make)
  return admit_forwarded_client(ip);
}

ClientLimits::Decision Worker::admit_forwarded_client(std::string_view ip) {
  if (!client_limits_) return {};
  // The address was formatted from the accepted socket's peer, so it always parses.
  const ClientKey key =
      ClientKey::from_ip(ip, client_limits_->settings().client_ipv6_prefix).value_or(ClientKey{});
  return count(metrics_, client_limits_->admit(key, ClientLimits::Clock::now()));
}

}  // namespace wsgate::gateway
