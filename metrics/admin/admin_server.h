// The admin HTTP server (libevent evhttp) on the main thread's event loop:
//   GET /metrics      Prometheus text exposition         (read token, when configured)
//   GET /connections  the live connection table as JSON  (read token, when configured)
//                     ?route=NAME&server=HOST:PORT&limit=N
//   GET /healthz      200 while the process runs
//   GET /ready        200, or 503 while draining
//   POST /connections/<id>/close, POST /upstreams/<name>/servers/<address>/close
//                     Close WebSockets (metrics/admin/admin_close.h)    (a write, see below)
//   GET /             the live dashboard (static page; its requests carry the token)
//   POST /reload      reload the configuration file in place (a write): 200 with a
//                     one-line summary, 400 with the config error
// Writes need the write token when one is configured (the read token gets 403). Without
// one they need a request that a web page on another site cannot make (CSRF, DNS
// rebinding): a Host header naming this listener (localhost, a loopback address, the
// admin address, or any IP literal when bound to a wildcard address; a rebinding
// attacker's Host is its own DNS name) with the admin port, and the custom header
// X-Wsgate-Admin, which a cross-site page can only send after a CORS preflight
// (Fetch standard, "CORS-unsafe request-header"), and the admin listener never answers
// OPTIONS with 2xx.
// A request that needs data asks the AdminSource, which gathers every worker's report
// (bounded by a deadline) while this loop waits: the admin thread does nothing else.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "metrics/reload_stats.h"
#include "metrics/scrape.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;

namespace wsgate::metrics {

struct CloseRequest;  // metrics/admin/admin_close.h
using TokenDigest = std::array<unsigned char, 32>;

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

// Who may do what on the admin listener (conf::Admin's tokens, "" = not set).
struct AdminTokens {
  std::string read;   // "" = reads are open
  std::string write;  // "" = writes need a request from this host (see above)
};

class AdminServer {
 public:
  // `tokens`: who may read and write (see above). `per_connection_limit` > 0: /metrics
  // also has the per-connection series (wsgate_connection_*) for at most that many
  // relayed connections.
  AdminServer(event_base* base, AdminSource& source, AdminTokens tokens,
              std::size_t per_connection_limit = 0);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port (host: an IP literal, IPv6 without brackets). On failure returns
  // false and sets `error`.
  bool listen(const std::string& host, uint16_t port, std::string& error);
  // Serves on `fd`, a listening socket bound to host:port that this process inherited
  // (systemd socket activation, a binary upgrade); the server owns it from now on.
  void listen_on(int fd, const std::string& host, uint16_t port);
  // Binary upgrade: the listening socket, for the new process (a duplicate the caller
  // owns; -1 if none), and, once it accepts, no more accepting here; requests on open
  // admin connections are still answered.
  int duplicate_listening_socket() const;
  void stop_listening();
  // A reload changed [admin] tokens or per-connection settings (main thread).
  void set_tokens(AdminTokens tokens);
  void set_per_connection_limit(std::size_t limit) { per_connection_limit_ = limit; }

 private:
  static void on_request(evhttp_request* req, void* self);
  void handle(evhttp_request* req);
  // Reads: true, or false after answering 401.
  bool authorize_read(evhttp_request* req);
  // Writes: true, or false after answering 401 or 403.
  bool authorize_write(evhttp_request* req);
  // POST to a close endpoint (metrics/admin/admin_close.h); `path_error` from parse_close_path.
  void handle_close(evhttp_request* req, CloseRequest& request, const std::string& path_error,
                    const char* query);
  void handle_reload(evhttp_request* req);

  AdminSource& source_;
  std::optional<TokenDigest> read_;   // SHA-256 of the tokens: compared in constant time
  std::optional<TokenDigest> write_;  // whatever the presented token's length
  std::string host_;                  // the bound address, for the Host check
  uint16_t port_ = 0;
  std::size_t per_connection_limit_;
  evhttp* http_ = nullptr;
  evhttp_bound_socket* bound_ = nullptr;
};

// Constant-time check of an Authorization header value against "Bearer <token>": both
// are hashed first, so the time depends on neither the token's length nor its bytes.
bool bearer_token_matches(const char* header, const std::string& token);
bool bearer_token_matches(const char* header, const TokenDigest& token);
TokenDigest token_digest(std::string_view token);

// A Host header value (RFC 9110 7.2) names the admin listener bound to host:port:
// "localhost", a loopback IP, `host` itself, or any IP literal when `host` is a wildcard
// address; the port (80 when absent) must be `port`.
bool host_is_admin_listener(std::string_view host_header, const std::string& host, uint16_t port);

}  // namespace wsgate::metrics
