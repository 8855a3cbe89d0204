// Periodic, asynchronous resolution of upstream servers given as host names, for
// upstreams with a resolve_interval: every address of the answer (A and AAAA) becomes a
// member of the pool; members whose address is no longer in the answer leave the pool
// and drain (upstream_pool.h). A failed or empty answer changes nothing (a DNS outage
// must not empty a pool). Changes are logged. Runs on the main thread's loop with its
// own evdns resolver: `nameservers` from the config, else /etc/resolv.conf.
//
// Ownership: the Server owns the resolver and destroys it on the loop's thread (at a
// reload or at exit); lookups in flight are cancelled (proxy/upstream/dns_lookup.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/dns_lookup.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::proxy {

class UpstreamResolver {
 public:
  // `config` and `pools` must outlive the resolver.
  UpstreamResolver(event_base* base, const conf::Config& config, UpstreamPools& pools);
  ~UpstreamResolver();
  UpstreamResolver(const UpstreamResolver&) = delete;
  UpstreamResolver& operator=(const UpstreamResolver&) = delete;

  // Resolves every name now, then every resolve_interval.
  void start();
  // Called on this thread for each member that leaves its pool (its address is no longer
  // in the answer), e.g. to drain its connections (Server::drain_server).
  using RemovedFn = std::function<void(const std::string& upstream, const ServerPtr& server)>;
  void on_removed(RemovedFn fn) { on_removed_ = std::move(fn); }

 private:
  struct Name {
    Name(event_base* base, const conf::Upstream& u, std::size_t i, Pool& p, UpstreamResolver* owner)
        : upstream(u),
          index(i),
          pool(p),
          timer(base, [this, owner] { owner->lookup(*this); }),
          resolver(owner) {}
    const conf::Upstream& upstream;
    std::size_t index;  // of the server in the upstream
    Pool& pool;
    Timer timer;
    DnsLookup lookup;  // cancelled when the Name goes
    UpstreamResolver* resolver;
  };

  void lookup(Name& n);
  void apply(Name& n, int result, const evutil_addrinfo* res);

  DnsBasePtr dns_;
  std::vector<std::unique_ptr<Name>> names_;
  RemovedFn on_removed_;
};

}  // namespace wsgate::proxy
