#include "proxy/auth/jwks_fetcher.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>

#include <algorithm>
#include <utility>

#include "metrics/log.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::proxy {

class JwksFetchers::Fetch {
 public:
  Fetch(event_base* base, evdns_base* dns, const conf::Route& route,
        std::shared_ptr<tls::JwtKeySource> source)
      : base_(base),
        dns_(dns),
        route_(route.name),
        jwt_(route.auth.jwt),
        source_(std::move(source)),
        timer_(base, [this] { begin(); }) {}

  ~Fetch() { stop(); }

  void begin() {
    stop();
    bufferevent* bev = nullptr;
    if (jwt_.jwks_https) {
      // SNI and the certificate's name checked against jwks_host (RFC 6125).
      SSL* ssl = source_->https() ? source_->https()->new_ssl(jwt_.jwks_host) : nullptr;
      if (ssl == nullptr) {
        failed("cannot set up TLS");
        return;
      }
      bev = bufferevent_openssl_socket_new(base_, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                           BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    conn_ = evhttp_connection_base_bufferevent_new(base_, dns_, bev, jwt_.jwks_host.c_str(),
                                                   jwt_.jwks_port);
    if (conn_ == nullptr) {
      failed("cannot open a connection");
      return;
    }
    evhttp_connection_set_timeout(conn_, kFetchTimeoutSeconds);
    evhttp_connection_set_max_body_size(conn_, kMaxJwksBytes);
    evhttp_connection_set_retries(conn_, 0);
    evhttp_request* req = evhttp_request_new(&Fetch::on_response, this);
    evkeyvalq* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Host", jwt_.jwks_host.c_str());
    evhttp_add_header(headers, "Accept", "application/jwk-set+json, application/json");
    evhttp_add_header(headers, "Connection", "close");
    if (evhttp_make_request(conn_, req, EVHTTP_REQ_GET, jwt_.jwks_path.c_str()) != 0) {
      failed("cannot send the request");
      return;
    }
  }

 private:
  static void on_response(evhttp_request* req, void* self) {
    static_cast<Fetch*>(self)->response(req);
  }

  void response(evhttp_request* req) {
    if (req == nullptr || evhttp_request_get_response_code(req) == 0) {
      failed("no answer (unreachable, TLS failure or timeout)");
      return;
    }
    const int status = evhttp_request_get_response_code(req);
    if (status != 200) {
      failed("answered " + std::to_string(status));
      return;
    }
    evbuffer* body = evhttp_request_get_input_buffer(req);
    const std::size_t n = evbuffer_get_length(body);
    std::string text(n, '\0');
    evbuffer_copyout(body, text.data(), n);
    std::string error;
    std::optional<tls::JwtKeySet> keys = tls::parse_jwks(text, error);
    if (!keys) {
      failed(error);
      return;
    }
    source_->publish(*keys);
    log::info("route " + route_ + ": " + std::to_string(keys->keys.size()) +
              " signing keys from jwks_url " + jwt_.jwks_url);
    schedule(jwt_.jwks_refresh);
  }

  void failed(const std::string& why) {
    log::warn("route " + route_ + ": jwks_url " + jwt_.jwks_url + ": " + why +
              (source_->waiting_for_url() ? "; no keys from it yet"
                                          : "; the keys fetched before stay in use"));
    schedule(std::min<conf::Duration>(jwt_.jwks_refresh, std::chrono::seconds(kRetrySeconds)));
  }

  void schedule(conf::Duration after) {
    // The connection is freed from the loop, not inside its own callback.
    timer_.arm_ms(std::chrono::duration_cast<std::chrono::milliseconds>(after).count());
  }

  void stop() {
    if (conn_ != nullptr) {
      evhttp_connection_free(conn_);  // cancels a request in flight (its callback gets null)
      conn_ = nullptr;
    }
  }

  event_base* base_;
  evdns_base* dns_;
  const std::string route_;
  const conf::JwtAuth& jwt_;
  const std::shared_ptr<tls::JwtKeySource> source_;
  evhttp_connection* conn_ = nullptr;
  Timer timer_;
};

JwksFetchers::JwksFetchers(event_base* base, const conf::Config& config,
                           const tls::TlsSnapshot& tls)
    : base_(base) {
  for (const conf::Route& route : config.routes) {
    if (route.auth.type != conf::RouteAuth::Type::Jwt || route.auth.jwt.jwks_url.empty()) continue;
    auto it = tls.route_jwt_keys.find(route.name);
    if (it == tls.route_jwt_keys.end()) continue;
    if (dns_ == nullptr) dns_ = evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    fetches_.push_back(std::make_unique<Fetch>(base_, dns_, route, it->second));
  }
}

JwksFetchers::~JwksFetchers() {
  fetches_.clear();
  if (dns_ != nullptr) evdns_base_free(dns_, /*fail_requests=*/0);
}

void JwksFetchers::start() {
  for (auto& f : fetches_) f->begin();
}

void adopt_fetched_keys(const tls::TlsSnapshot& next, const tls::TlsSnapshot& previous) {
  for (const auto& [route, source] : next.route_jwt_keys) {
    for (const auto& [old_route, old_source] : previous.route_jwt_keys) {
      if (!source->url().empty() && old_source->url() == source->url()) {
        source->adopt(*old_source);
        break;
      }
    }
  }
}

}  // namespace wsgate::proxy
