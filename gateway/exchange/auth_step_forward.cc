// AuthStep's forward branch (conf::ForwardAuth): see gateway/exchange/auth_step.h and
// proxy/auth/forward_auth.h. The decision cache is looked up first (proxy/auth/
// forward_auth_cache.h); on a miss one subrequest goes to the auth service's [[upstream]]
// through the worker's balancers, TLS contexts and idle keep-alive pool, as a forwarded
// request would.
#include <algorithm>
#include <chrono>
#include <utility>

#include "gateway/exchange/auth_step.h"
#include "gateway/worker.h"
#include "proxy/auth/forward_auth.h"
#include "proxy/auth/forward_auth_cache.h"

namespace wsgate::gateway {
void AuthStep::run_forward(http::RequestHead& request, std::string_view client_ip) {
  const conf::ForwardAuth& forward = route_.auth.forward;
  // A client cannot pose as authenticated: the fields the service's 2xx sets are removed
  // first, also when the request is then refused or the service only sees the rest.
  for (const std::string& name : forward.response_headers) remove_client_copies(request, name);

  const bool caching = forward.cache_ttl.count() > 0;
  proxy::ForwardAuthCacheKey key{};
  if (caching) {
    const auto now = proxy::ForwardAuthCaches::Clock::now();
    key = proxy::forward_auth_cache_key(forward, request);
    std::optional<proxy::ForwardAuthVerdict> hit =
        worker_.forward_auth_caches().for_route(route_, now).find(key, now);
    worker_.metrics().auth_cache_lookup(route_.name, hit.has_value());
    if (hit) {
      forward_decided(request, std::move(*hit));  // may destroy this step: return at once
      return;
    }
  }

  const conf::Upstream* upstream = config_.find_upstream(forward.upstream);
  proxy::ForwardAuthCheck::Context ctx;
  ctx.base = worker_.base();
  ctx.dns = worker_.dns();
  ctx.upstream = upstream;
  if (upstream != nullptr) {
    ctx.tls = tls_ != nullptr ? tls_->upstream(upstream->name) : nullptr;
    ctx.servers = worker_.balancers_for(config_).select(*upstream, client_ip, request);
  }
  ctx.idle = &worker_.idle_upstreams();
  ctx.retire = [worker = &worker_](std::unique_ptr<proxy::UpstreamConnector> c) {
    worker->retire(std::move(c));
  };
  ctx.metrics = &worker_.metrics();
  ctx.route = route_.name;

  // Host: the auth service's own name (its first server as configured, as the health
  // checks send it); the client's authority goes in X-Forwarded-Host.
  const std::string host =
      upstream != nullptr && !upstream->servers.empty() ? upstream->servers.front().text : "-";
  const proxy::ForwardAuthFacts facts{host, client_ip, request.scheme == "https" ? "https" : "http",
                                      upstream != nullptr && upstream->keepalive > 0};
  std::string head = proxy::build_forward_auth_request(forward, request, facts);

  forward_ = std::make_unique<proxy::ForwardAuthCheck>(
      std::move(ctx), forward, std::move(head),
      [this, &request, caching, key](proxy::ForwardAuthVerdict&& verdict) {
        if (caching) {
          // Looked up again: the scope may have been replaced meanwhile (a reload).
          const auto now = proxy::ForwardAuthCaches::Clock::now();
          worker_.forward_auth_caches()
              .for_route(route_, now)
              .insert(key, verdict, now, route_.auth.forward.cache_ttl);
        }
        forward_decided(request, std::move(verdict));  // last: may destroy this step
      });
  forward_->start();
}

void AuthStep::forward_decided(http::RequestHead& request, proxy::ForwardAuthVerdict&& verdict) {
  AuthOutcome outcome;
  switch (verdict.kind) {
    case proxy::ForwardAuthVerdict::Kind::Allowed:
      // RFC 9110 15.3: the service authorised the request; its chosen fields go upstream.
      for (http::Field& f : verdict.upstream_fields) request.fields.push_back(std::move(f));
      outcome.allowed = true;
      decided(std::move(outcome), "allowed");
      return;
    case proxy::ForwardAuthVerdict::Kind::Denied:
      // The service's own answer (401 with its challenge, RFC 9110 15.5.2; 403; a redirect
      // to a login page) goes to the client as it is, with the fields a client needs.
      // RFC 9110 9.3.2: an answer to HEAD has no content.
      if (request.method == "HEAD") verdict.body.clear();
      outcome.service_answer = AuthOutcome::ServiceAnswer{
          verdict.status, std::move(verdict.client_fields), std::move(verdict.body)};
      decided(std::move(outcome), "denied");
      return;
    case proxy::ForwardAuthVerdict::Kind::Failed:
      if (route_.auth.forward.failure_mode_allow) {
        outcome.allowed = true;
        decided(std::move(outcome), "failed_allowed");
        return;
      }
      // RFC 9110 15.6.4: the gateway cannot serve the request for now.
      outcome.refusal = http::Refusal{503, std::move(verdict.reason), {}};
      decided(std::move(outcome), "failed");
      return;
  }
}

}  // namespace wsgate::gateway
