#include "metrics/admin/admin_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdlib>
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

TokenDigest token_digest(std::string_view token) {
  TokenDigest d{};
  unsigned int length = 0;
  EVP_Digest(token.data(), token.size(), d.data(), &length, EVP_sha256(), nullptr);
  return d;
}

bool bearer_token_matches(const char* header, const TokenDigest& token) {
  if (header == nullptr) return false;
  // RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive.
  constexpr std::string_view kScheme = "bearer ";
  const std::string_view h(header);
  if (h.size() < kScheme.size() || strncasecmp(header, kScheme.data(), kScheme.size()) != 0)
    return false;
  std::string_view presented = h.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  // Digests of equal length: the comparison time says nothing of the token's length.
  const TokenDigest mine = token_digest(presented);
  return CRYPTO_memcmp(mine.data(), token.data(), token.size()) == 0;
}

bool bearer_token_matches(const char* header, const std::string& token) {
  return bearer_token_matches(header, token_digest(token));
}

bool host_is_admin_listener(std::string_view host_header, const std::string& host, uint16_t port) {
  std::string_view name = host_header;
  std::string_view port_text;
  if (name.starts_with('[')) {  // RFC 3986 3.2.2: IP-literal
    const auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    port_text = name.substr(close + 1);
    name = name.substr(1, close - 1);
    if (!port_text.empty() && !port_text.starts_with(':')) return false;
    if (!port_text.empty()) port_text.remove_prefix(1);
  } else if (const auto colon = name.rfind(':'); colon != std::string_view::npos) {
    port_text = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  unsigned long got_port = 80;
  if (!port_text.empty()) {
    char* end = nullptr;
    const std::string p(port_text);
    got_port = std::strtoul(p.c_str(), &end, 10);
    if (end == p.c_str() || *end != 0) return false;
  }
  if (got_port != port || name.empty()) return false;
  std::string lower(name);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (lower == "localhost" || lower == host) return true;
  // An IP literal cannot be rebound: only DNS names can point at us by surprise.
  unsigned char buf[sizeof(in6_addr)];
  const bool v4 = inet_pton(AF_INET, lower.c_str(), buf) == 1;
  const bool v6 = !v4 && inet_pton(AF_INET6, lower.c_str(), buf) == 1;
  if (!v4 && !v6) return false;
  if (host == "0.0.0.0" || host == "::") return true;
  if (v4) return buf[0] == 127;  // 127.0.0.0/8
  static const unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(buf, kLoopback6, 16) == 0;
}

AdminServer::AdminServer(event_base* base, AdminSource& source, AdminTokens tokens,
                         std::size_t per_connection_limit)
    : source_(source), per_connection_limit_(per_connection_limit), http_(evhttp_new(base)) {
  set_tokens(std::move(tokens));
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
  evhttp_set_timeout(http_, 30);
  evhttp_set_max_headers_size(http_, 16 * 1024);
  evhttp_set_max_body_size(http_, 0);
  evhttp_set_gencb(http_, &AdminServer::on_request, this);
}

AdminServer::~AdminServer() {
  if (http_ != nullptr) evhttp_free(http_);
}

void AdminServer::set_tokens(AdminTokens tokens) {
  read_.reset();
  write_.reset();
  if (!tokens.read.empty()) read_ = token_digest(tokens.read);
  if (!tokens.write.empty()) write_ = token_digest(tokens.write);
}

bool AdminServer::listen(const std::string& host, uint16_t port, std::string& error) {
  host_ = host;
  port_ = port;
  bound_ = evhttp_bind_socket_with_handle(http_, host.c_str(), port);
  if (bound_ == nullptr) {
    error = "cannot listen on admin address " + conf::format_host_port(host, port) + ": " +
            std::strerror(errno);
    return false;
  }
  return true;
}

void AdminServer::listen_on(int fd, const std::string& host, uint16_t port) {
  host_ = host;
  port_ = port;
  bound_ = evhttp_accept_socket_with_handle(http_, fd);
}

int AdminServer::duplicate_listening_socket() const {
  if (bound_ == nullptr) return -1;
  return fcntl(evhttp_bound_socket_get_fd(bound_), F_DUPFD_CLOEXEC, 0);
}

void AdminServer::stop_listening() {
  if (bound_ == nullptr) return;
  // Closes this process's descriptor only: the new process holds the socket.
  evhttp_del_accept_socket(http_, bound_);
  bound_ = nullptr;
}

void AdminServer::on_request(evhttp_request* req, void* self) {
  static_cast<AdminServer*>(self)->handle(req);
}

namespace {

bool unauthorized(evhttp_request* req, std::string_view why) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                    "Bearer realm=\"wsgate admin\"");
  reply_text(req, 401, "Unauthorized", why);
  return false;
}

}  // namespace

bool AdminServer::authorize_read(evhttp_request* req) {
  if (!read_) return true;
  const char* header = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  // Both checks always run: which token matched is not visible in the time taken.
  const bool as_reader = bearer_token_matches(header, *read_);
  const bool as_writer = write_ && bearer_token_matches(header, *write_);
  if (as_reader || as_writer) return true;
  return unauthorized(req, "missing or wrong bearer token\n");
}

bool AdminServer::authorize_write(evhttp_request* req) {
  const evkeyvalq* in = evhttp_request_get_input_headers(req);
  if (write_) {
    const char* header = evhttp_find_header(in, "Authorization");
    if (bearer_token_matches(header, *write_)) return true;
    if (read_ && bearer_token_matches(header, *read_)) {
      reply_text(req, 403, "Forbidden",
                 "the read token cannot change anything: use the write token\n");
      return false;
    }
    return unauthorized(req, "missing or wrong bearer token (writes need the write token)\n");
  }
  // No write token: only a request a browser page on another site cannot make.
  const char* host = evhttp_find_header(in, "Host");
  if (host == nullptr || !host_is_admin_listener(host, host_, port_)) {
    reply_text(req, 403, "Forbidden",
               "writes without an admin write token need a Host header naming this admin "
               "listener (localhost or its IP address and port)\n");
    return false;
  }
  const char* marker = evhttp_find_header(in, "X-Wsgate-Admin");
  if (marker == nullptr || *marker == 0) {
    reply_text(req, 403, "Forbidden",
               "writes without an admin write token need the header X-Wsgate-Admin: 1 "
               "(which a web page on another site cannot send)\n");
    return false;
  }
  return true;
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
  if (!authorize_read(req)) return;
  if (path == "/metrics") {
    const bool per_connection = per_connection_limit_ > 0;
    const ScrapeResult r = source_.scrape(/*with_connections=*/per_connection);
    ScrapeInfo info;
    info.workers = r.workers;
    info.workers_missing = r.workers_missing;
    info.upstream_servers = r.upstream_servers;
    info.certificates = r.certificates;
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
  if (!authorize_write(req)) return;
  const ReloadResult r = source_.reload();
  if (r.ok) return reply_text(req, 200, "OK", "reloaded: " + r.message + "\n");
  return reply_text(req, 400, "Bad Request", "not reloaded: " + r.message + "\n");
}

void AdminServer::handle_close(evhttp_request* req, CloseRequest& request,
                               const std::string& path_error, const char* query) {
  if (!authorize_write(req)) return;
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
