#include "proxy/balancer.h"

namespace wsgate::proxy {

std::vector<conf::HostPort> Balancers::candidates(const conf::Upstream& upstream) {
  std::vector<conf::HostPort> order;
  const std::size_t n = upstream.servers.size();
  if (n == 0) return order;
  std::size_t& next = next_index_[upstream.name];
  const std::size_t first = next % n;
  next = first + 1;
  order.reserve(n);
  for (std::size_t i = 0; i < n; ++i) order.push_back(upstream.servers[(first + i) % n]);
  return order;
}

}  // namespace wsgate::proxy
