// The admin HTTP server (libevent evhttp) on the main thread's event loop:
//   GET /metrics      Prometheus text exposition         (token, when configured)
//   GET /connections  the live connection table as JSON  (token, when configured)
//                     ?route=NAME&server=HOST:PORT&limit=N
//   GET /healthz      200 while the process runs
//   GET /ready        200, or 503 while draining
//   POST /connections/<id>/close, POST /upstreams/<name>/servers/<address>/close
//                     Close WebSockets (metrics/admin/admin_close.h)    (token, when configured)
//   GET /             the live dashboard (static page; its requests carry the token)
//   POST /reload      reload the configuration file in place (token, when configured):
//                     200 with a one-line summary, 400 with the config error
// A request that needs data asks the AdminSource, which gathers every worker's report
// (bounded by a deadline) while this loop waits: the admin thread does nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "metrics/reload_stats.h"
#include "metrics/scrape.h"

struct event_base;
struct evhttp;
struct evhttp_request;

namespace wsgate::metrics {

struct CloseRequest;  // metrics/admin/admin_close.h

class AdminSource {
 public:
  // Every worker's report, merged; blocks at most the scrape deadline.
  virtual ScrapeResult scrape(bool with_connections) = 0;
  // false while draining (/ready answers 503).
  virtual bool ready() const = 0;
  // Close connection `id` of `worker` with `code`; false when there is no such relayed
  // connection. Blocks at most the scrape deadline. (Default: nothing to close.)
  virtual bool close_connection(int /*worker*/, uint64_t /*id*/, uint16_t /*code*/,
                                const std::string& /*reason*/) {
    return false;
  }
  // Close every relayed connection of `server` ("host:port") of `upstream`; how many,
  // or nullopt when the upstream or the server is unknown.
  virtual std::optional<std::size_t> close_server(const std::string& /*upstream*/,
                                                  const std::string& /*server*/, uint16_t /*code*/,
                                                  const std::string& /*reason*/) {
    return std::nullopt;
  }
  // POST /reload: loads, validates and publishes the config file again; runs on this
  // (the main) thread and returns when the new config is published or rejected.
  virtual ReloadResult reload() = 0;
  virtual ReloadStats reload_stats() const = 0;

 protected:
  ~AdminSource() = default;
};

class AdminServer {
 public:
  // `token`: "" = no authentication; otherwise /metrics and /connections require
  // "Authorization: Bearer <token>" (RFC 6750 2.1) and answer 401 without it.
  // `per_connection_limit` > 0: /metrics also has the per-connection series
  // (wsgate_connection_*) for at most that many relayed connections.
  AdminServer(event_base* base, AdminSource& source, std::string token,
              std::size_t per_connection_limit = 0);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port (host: an IP literal, IPv6 without brackets). On failure returns
  // false and sets `error`.
  bool listen(const std::string& host, uint16_t port, std::string& error);
  // A reload changed [admin] token or per-connection settings (main thread).
  void set_token(std::string token) { token_ = std::move(token); }
  void set_per_connection_limit(std::size_t limit) { per_connection_limit_ = limit; }

 private:
  static void on_request(evhttp_request* req, void* self);
  void handle(evhttp_request* req);
  bool authorized(evhttp_request* req) const;
  // POST to a close endpoint (metrics/admin/admin_close.h); `path_error` from parse_close_path.
  void handle_close(evhttp_request* req, CloseRequest& request, const std::string& path_error,
                    const char* query);
  void handle_reload(evhttp_request* req);

  AdminSource& source_;
  std::string token_;
  std::size_t per_connection_limit_;
  evhttp* http_ = nullptr;
};

// Constant-time check of an Authorization header value against "Bearer <token>".
bool bearer_token_matches(const char* header, const std::string& token);

}  // namespace wsgate::metrics
