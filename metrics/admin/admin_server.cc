#include "metrics/admin/admin_server.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "conf/address.h"
#include "metrics/admin/admin_close.h"
#include "metrics/admin/connection_table.h"
#include "metrics/admin/dashboard.h"
#include "metrics/exposition.h"

namespace wsgate::metrics {
namespace {

void reply(evhttp_request* req, int status, const char* reason, const char* content_type,
           std::string_view body) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", content_type);
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(req, status, reason, out);
  evbuffer_free(out);
}

void reply_text(evhttp_request* req, int status, const char* reason, std::string_view body) {
  reply(req, status, reason, "text/plain; charset=utf-8", body);
}

}  // namespace

bool bearer_token_matches(const char* header, const std::string& token) {
  if (header == nullptr) return false;
  // RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive.
  constexpr std::string_view kScheme = "bearer ";
  const std::string_view h(header);
  if (h.size() < kScheme.size() || strncasecmp(header, kScheme.data(), kScheme.size()) != 0)
    return false;
  std::string_view presented = h.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  if (presented.size() != token.size()) return false;
  return CRYPTO_memcmp(presented.data(), token.data(), token.size()) == 0;
}

AdminServer::AdminServer(event_base* base, AdminSource& source, std::string token,
                         std::size_t per_connection_limit)
    : source_(source),
      token_(std::move(token)),
      per_connection_limit_(per_connection_limit),
      http_(evhttp_new(base)) {
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
  evhttp_set_timeout(http_, 30);
  evhttp_set_max_headers_size(http_, 16 * 1024);
  evhttp_set_max_body_size(http_, 0);
  evhttp_set_gencb(http_, &AdminServer::on_request, this);
}

AdminServer::~AdminServer() {
  if (http_ != nullptr) evhttp_free(http_);
}

bool AdminServer::listen(const std::string& host, uint16_t port, std::string& error) {
  if (evhttp_bind_socket_with_handle(http_, host.c_str(), port) == nullptr) {
    error = "cannot listen on admin address " + conf::format_host_port(host, port) + ": " +
            std::strerror(errno);
    return false;
  }
  return true;
}

void AdminServer::on_request(evhttp_request* req, void* self) {
  static_cast<AdminServer*>(self)->handle(req);
}

bool AdminServer::authorized(evhttp_request* req) const {
  if (token_.empty()) return true;
  const char* header = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  return bearer_token_matches(header, token_);
}

void AdminServer::handle(evhttp_request* req) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* raw_path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
  const std::string_view path = raw_path != nullptr && *raw_path != 0 ? raw_path : "/";
  const char* query = uri != nullptr ? evhttp_uri_get_query(uri) : nullptr;

  // RFC 9110 15.5.6: a method the resource does not support is 405, with Allow.
  const bool post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
  if (path == "/reload") return handle_reload(req);
  CloseRequest close;
  if (const auto close_error = parse_close_path(path, close)) {
    if (!post) {
      evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
      return reply_text(req, 405, "Method Not Allowed", "use POST to close connections\n");
    }
    return handle_close(req, close, *close_error, query);
  }
  if (post) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    return reply_text(req, 405, "Method Not Allowed",
                      "only POST /reload and POST .../close change anything\n");
  }
  if (path == "/healthz") return reply_text(req, 200, "OK", "ok\n");
  if (path == "/ready") {
    if (source_.ready()) return reply_text(req, 200, "OK", "ready\n");
    return reply_text(req, 503, "Service Unavailable", "draining\n");
  }
  if (path == "/") return reply(req, 200, "OK", "text/html; charset=utf-8", dashboard_html());

  if (path != "/metrics" && path != "/connections")
    return reply_text(req, 404, "Not Found", "not found (try /metrics, /connections, /)\n");
  if (!authorized(req)) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"wsgate admin\"");
    return reply_text(req, 401, "Unauthorized", "missing or wrong bearer token\n");
  }
  if (path == "/metrics") {
    const bool per_connection = per_connection_limit_ > 0;
    const ScrapeResult r = source_.scrape(/*with_connections=*/per_connection);
    ScrapeInfo info;
    info.workers = r.workers;
    info.workers_missing = r.workers_missing;
    info.upstream_servers = r.upstream_servers;
    const ReloadStats reloads = source_.reload_stats();
    info.reloads = &reloads;
    if (per_connection) {
      info.connections = &r.connections;
      info.per_connection_limit = per_connection_limit_;
    }
    const std::string text = render_text(build_families(r.metrics, info, read_process_stats()));
    return reply(req, 200, "OK", kTextContentType, text);
  }
  ConnectionFilter filter;
  const std::string error = parse_connection_filter(query != nullptr ? query : "", filter);
  if (!error.empty()) return reply_text(req, 400, "Bad Request", error + "\n");
  ScrapeResult r = source_.scrape(/*with_connections=*/true);
  return reply(req, 200, "OK", "application/json",
               connections_json(std::move(r.connections), filter));
}

void AdminServer::handle_reload(evhttp_request* req) {
  if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
    return reply_text(req, 405, "Method Not Allowed", "use POST /reload\n");
  }
  if (!authorized(req)) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"wsgate admin\"");
    return reply_text(req, 401, "Unauthorized", "missing or wrong bearer token\n");
  }
  const ReloadResult r = source_.reload();
  if (r.ok) return reply_text(req, 200, "OK", "reloaded: " + r.message + "\n");
  return reply_text(req, 400, "Bad Request", "not reloaded: " + r.message + "\n");
}

void AdminServer::handle_close(evhttp_request* req, CloseRequest& request,
                               const std::string& path_error, const char* query) {
  if (!authorized(req)) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"wsgate admin\"");
    return reply_text(req, 401, "Unauthorized", "missing or wrong bearer token\n");
  }
  if (!path_error.empty()) return reply_text(req, 400, "Bad Request", path_error + "\n");
  const std::string error = parse_close_query(query != nullptr ? query : "", request);
  if (!error.empty()) return reply_text(req, 400, "Bad Request", error + "\n");
  std::string body = "{";
  if (request.target == CloseRequest::Target::Connection) {
    const std::string id = std::to_string(request.worker) + "-" + std::to_string(request.id);
    if (!source_.close_connection(request.worker, request.id, request.code, request.reason))
      return reply_text(req, 404, "Not Found", "no relayed connection " + id + "\n");
    body += "\"id\":";
    append_json_string(body, id);
    body += ",\"closed\":1";
  } else {
    const std::optional<std::size_t> closed =
        source_.close_server(request.upstream, request.server, request.code, request.reason);
    if (!closed)
      return reply_text(
          req, 404, "Not Found",
          "no server \"" + request.server + "\" in upstream \"" + request.upstream + "\"\n");
    body += "\"upstream\":";
    append_json_string(body, request.upstream);
    body += ",\"server\":";
    append_json_string(body, request.server);
    body += ",\"closed\":" + std::to_string(*closed);
  }
  body += ",\"code\":" + std::to_string(request.code) + "}\n";
  return reply(req, 200, "OK", "application/json", body);
}

}  // namespace wsgate::metrics
