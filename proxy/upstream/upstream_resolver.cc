#include "proxy/upstream/upstream_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <string>

#include "conf/address.h"
#include "conf/units.h"
#include "metrics/log.h"

namespace wsgate::proxy {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

UpstreamResolver::UpstreamResolver(event_base* base, const conf::Config& config,
                                   UpstreamPools& pools) {
  for (const conf::Upstream& u : config.upstreams) {
    if (u.resolve_interval.count() == 0) continue;
    Pool* pool = pools.find(u.name);
    if (pool == nullptr) continue;
    for (std::size_t i = 0; i < u.servers.size(); ++i) {
      if (conf::is_ip_literal(u.servers[i].host)) continue;
      names_.push_back(std::make_unique<Name>(base, u, i, *pool, this));
    }
  }
  if (names_.empty()) return;
  if (config.nameservers.empty()) {
    dns_.reset(evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS));
    if (!dns_) log::warn("no usable /etc/resolv.conf: upstream host names will not resolve");
  }
  if (!dns_) {
    dns_.reset(evdns_base_new(base, 0));
    evdns_base_load_hosts(dns_.get(), nullptr);
    for (const auto& ns : config.nameservers)
      if (evdns_base_nameserver_ip_add(dns_.get(), conf::to_string(ns).c_str()) != 0)
        log::warn("cannot use nameserver " + conf::to_string(ns));
  }
}

UpstreamResolver::~UpstreamResolver() {
  // Lookups in flight end with their Names (DnsLookup cancels them) before dns_ goes.
  names_.clear();
}

void UpstreamResolver::start() {
  for (auto& n : names_) lookup(*n);
}

void UpstreamResolver::lookup(Name& n) {
  n.timer.arm_ms(n.upstream.resolve_interval.count());
  if (n.lookup.in_flight()) return;  // a slow answer: wait for it rather than pile up lookups
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // A and AAAA: every address is a member
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  n.lookup.start(dns_.get(), n.upstream.servers[n.index].host.c_str(), hints,
                 [this, &n](int result, const evutil_addrinfo* res) { apply(n, result, res); });
}

void UpstreamResolver::apply(Name& n, int result, const evutil_addrinfo* res) {
  const conf::UpstreamServer& server = n.upstream.servers[n.index];
  std::vector<std::string> addresses;
  for (const evutil_addrinfo* ai = res; result == 0 && ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    std::string ip = conf::describe(ai->ai_addr).ip;
    if (std::find(addresses.begin(), addresses.end(), ip) == addresses.end())
      addresses.push_back(std::move(ip));
  }
  if (addresses.empty()) {
    log::warn("upstream " + n.upstream.name + ": cannot resolve " + server.text + ": " +
              (result != 0 ? evutil_gai_strerror(result) : "no address") +
              "; its members stay as they were");
    return;
  }
  std::sort(addresses.begin(), addresses.end());
  const std::shared_ptr<const Members> before = n.pool.members();
  const auto [added, removed] = n.pool.set_addresses(n.index, addresses);
  if (added.empty() && removed.empty()) return;
  std::string message =
      "upstream " + n.upstream.name + ": " + server.text + " resolves to " + join(addresses);
  if (!added.empty()) message += "; added " + join(added);
  if (!removed.empty()) message += "; removed " + join(removed) + " (their connections drain)";
  log::info(message);
  if (!on_removed_) return;
  for (const ServerPtr& s : before->servers)
    if (s->config_index == n.index &&
        std::find(removed.begin(), removed.end(), s->config.text) != removed.end())
      on_removed_(n.upstream.name, s);
}

}  // namespace wsgate::proxy
