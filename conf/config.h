// The immutable configuration snapshot. Built once by conf::load_config(), then shared
// read-only (std::shared_ptr<const Config>) by every worker; a connection keeps the
// snapshot it started with until it ends. conf/ depends on nothing else of ours.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate::conf {

using Duration = std::chrono::milliseconds;

// Where a value came from, for messages about it after loading (e.g. a route that names
// an upstream that does not exist is reported at the route's line).
struct SourcePosition {
  std::string file;
  int line = 0;
  int column = 0;
};

// host:port of one upstream server, or of a listener's bind address.
struct HostPort {
  std::string host;  // name, IPv4 literal, or IPv6 literal without brackets
  uint16_t port = 0;
};

enum class TlsVersion { Tls12, Tls13 };
enum class ClientAuth { None, Optional, Required };

// One certificate chain and its key (PEM), optionally with a DER OCSP response to staple.
struct CertificateFiles {
  std::string cert;  // absolute, or relative to the config file's folder
  std::string key;
  std::string ocsp;  // "" = no stapling
  SourcePosition where;
};

// [listener.tls]: the listener speaks TLS (wss://).
struct ListenerTls {
  std::vector<CertificateFiles> certificates;  // chosen by SNI; the first is the default
  TlsVersion min_version = TlsVersion::Tls12;
  std::string ciphers;       // TLS 1.2 cipher list (OpenSSL syntax); "" = our modern default
  std::string ciphersuites;  // TLS 1.3 suites; "" = OpenSSL's default
  std::string client_ca;     // CA file for client certificates; required unless auth is None
  ClientAuth client_auth = ClientAuth::None;
  SourcePosition where;
};

// [upstream.tls]: connect to the servers with TLS (wss:// upstreams).
struct UpstreamTls {
  std::string ca;           // CA file; "" = the system's trust store
  std::string server_name;  // SNI and the name verified; "" = each server's host
  bool verify = true;
  std::string cert;  // client certificate (optional)
  std::string key;
  SourcePosition where;
};

// An IP network ("10.0.0.0/8", "fd00::/8"; a single address is a /32 or /128).
struct IpNetwork {
  int family = 0;                     // AF_INET or AF_INET6
  std::array<uint8_t, 16> address{};  // network byte order; IPv4 in the first 4 bytes
  int prefix = 0;                     // 0..32 or 0..128
};

struct Listener {
  std::string name;  // defaults to the address string, e.g. "127.0.0.1:8080"
  HostPort address;  // "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80", "[::]:80"
  // Request-head limits (RFC 9112 has none; we do): over -> 431.
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_headers = 100;
  // The whole request head must arrive within this time, else 408 (slow-header attacks).
  Duration handshake_timeout = std::chrono::seconds(10);
  std::optional<ListenerTls> tls;  // set: TLS listener
  // HTTP/2 (RFC 8441 WebSockets): offered by ALPN on a TLS listener (`http2`), or taken
  // with prior knowledge on a plain one (`h2c`).
  bool http2 = true;
  bool h2c = false;
  // An HTTP/2 stream with bytes for the client that could send none of them for this
  // long (the client keeps its flow-control window closed) is reset.
  Duration http2_send_timeout = std::chrono::seconds(60);
  // HTTP CONNECT tunnels (RFC 9110 9.3.6; over HTTP/2, RFC 9113 8.5) to the destinations
  // the [connect] allow-list names. Off: a CONNECT request gets 405.
  bool connect = false;
  // PROXY protocol v1/v2 (an L4 load balancer in front): every connection starts with a
  // PROXY header, read before TLS within handshake_timeout, and only from an address in
  // proxy_protocol_from (required, non-empty); its source address is the client from
  // then on. Anything else is closed (gateway/proxy_header_reader.h).
  bool proxy_protocol = false;
  std::vector<IpNetwork> proxy_protocol_from;
  SourcePosition where;
};

// One server of an upstream. It is a HostPort (servers[i].host / .port) plus the pool
// options of the inline-table form {address = "host:port", weight = 2, ...}.
struct UpstreamServer : HostPort {
  std::string text;              // the address as written, e.g. "10.0.0.1:9001" (hash identity)
  unsigned weight = 1;           // share of new connections relative to the others, 1..1000
  unsigned max_connections = 0;  // 0: no limit; at the limit the server is skipped
  bool backup = false;           // used only when no non-backup server is available
  // A member found by DNS (resolve_interval): `host` is its address, `name` the host name
  // it was found by, which TLS sends as SNI and verifies (RFC 6125). "" = `host` is it.
  std::string name;
};

// least_conn is the default: WebSocket connections live long, so the number a server
// holds, not the number it was given, is what needs balancing.
enum class Balancer { RoundRobin, LeastConn, RandomTwo, Hash };

// Where the hash balancer takes its key from ("client_ip", "header:X-User",
// "cookie:sid", "query:user"). A request without the key falls back to its client IP.
struct HashKey {
  enum class Source { ClientIp, Header, Cookie, Query };
  Source source = Source::ClientIp;
  std::string name;  // header (any case), cookie or query parameter name
};

// [upstream.health_check]: active probes of every server from the main thread.
struct HealthCheck {
  enum class Type { Tcp, WebSocket, Http };
  bool enabled = false;            // true when the table is present
  Type type = Type::Tcp;           // "tcp": connect; "websocket": a handshake expecting 101;
                                   // "http": GET path, healthy on 2xx/3xx (or expect_status)
  std::string path = "/";          // websocket and http
  std::vector<int> expect_status;  // http only: the healthy statuses; empty: 200-399
  Duration interval = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(2);
  unsigned rise = 2;  // consecutive successes that make a down server up
  unsigned fall = 3;  // consecutive failures that make an up server down
};

struct Upstream {
  std::string name;
  std::vector<UpstreamServer> servers;
  Balancer balancer = Balancer::LeastConn;
  HashKey hash_key;  // Balancer::Hash only
  // Session affinity (proxy/upstream/affinity.h): the name of a cookie the gateway sets
  // on forwarded HTTP responses, naming the server that answered (opaquely); requests
  // and WebSocket upgrades carrying it go to that server while it can take them. Empty:
  // off.
  std::string affinity_cookie;
  // HTTP forwarding: idle keep-alive connections kept per server and worker for the next
  // request (0: one connection per request), and how long one may stay idle - below the
  // servers' own idle timeouts (Node 5 s, Apache 5 s), so the gateway closes first.
  unsigned keepalive = 256;
  Duration keepalive_timeout = std::chrono::seconds(4);
  // Other servers tried after a connect or handshake failure, while nothing has reached
  // the client.
  unsigned retries = 2;
  // Passive health: this many consecutive connect/handshake failures eject a server for
  // eject_duration (0: never).
  unsigned eject_after_failures = 3;
  Duration eject_duration = std::chrono::seconds(10);
  // A server back from down or ejected has its weight ramped from 10% to 100% over this
  // time (0: at once), so least_conn does not pile every new connection onto it.
  Duration slow_start = std::chrono::seconds(0);
  // Servers given as host names are resolved this often (asynchronously, on the main
  // thread); every address becomes a member. 0: a name is resolved at each connect and
  // stays one member.
  Duration resolve_interval = std::chrono::seconds(30);
  HealthCheck health_check;
  std::optional<UpstreamTls> tls;  // set: servers speak TLS
  // send_proxy_protocol: every new connection to a server starts with a PROXY protocol
  // header naming the client (before TLS, before the request); a websocket health check
  // sends a LOCAL (v2) / UNKNOWN (v1) one. Such connections carry one client each, so
  // keepalive is 0 with it.
  enum class ProxyProtocol { Off, V1, V2 };
  ProxyProtocol send_proxy_protocol = ProxyProtocol::Off;
  SourcePosition where;
  // [upstream.rebalance]: after scale-out, shed the excess of overloaded servers.
  struct Rebalance {
    bool enabled = false;  // true when the table is present
    // Act when a server holds more than factor x its fair share (weight share of the
    // connections of the available servers); then shed it down to its share.
    double factor = 1.2;
    Duration interval = std::chrono::seconds(1);  // how often the main thread checks
    unsigned max_per_second = 10;                 // connections shed per second, process-wide
  } rebalance;
};

const char* to_string(Balancer b);

// [route.auth]: who may use a route, checked after routing and before any upstream work
// (gateway/exchange/auth_step.h), for WebSocket handshakes (HTTP/1.1 and RFC 8441 streams)
// and forwarded HTTP requests alike.
//
// type = "jwt": a JSON Web Token (RFC 7519) verified at the gateway (proxy/auth/jwt.h).
struct JwtAuth {
  // Where the token is looked for, in this order; the first place holding one is used.
  struct TokenSource {
    enum class Kind {
      Bearer,       // Authorization: Bearer <token> (RFC 6750 2.1)
      Cookie,       // the cookie `name`
      Query,        // the query parameter `name`
      Subprotocol,  // a Sec-WebSocket-Protocol entry "<name><token>" (browsers cannot set
                    // headers on a WebSocket, RFC 6455 4.1 lets them list protocols)
    };
    Kind kind = Kind::Bearer;
    std::string name;  // cookie / parameter name, or the subprotocol's prefix
  };
  std::vector<TokenSource> token_from{TokenSource{}};
  // Verification keys, loaded with the config (and again at each reload): a JWKS file
  // (RFC 7517), PEM public keys, and a file holding an HS256 secret. Paths are resolved
  // against the config file's folder.
  std::string jwks_file;
  std::vector<std::string> public_key_files;
  std::string hmac_secret_file;
  // A JWKS fetched over HTTP(S) (proxy/auth/jwks_fetcher.h) at start, after a reload and
  // every jwks_refresh (a failed fetch is retried sooner, the last good keys stay).
  // https:// is verified against the system's CA certificates, or jwks_ca.
  std::string jwks_url;  // "" = none; else checked: http(s)://host[:port]/path
  bool jwks_https = false;
  std::string jwks_host;
  std::uint16_t jwks_port = 0;
  std::string jwks_path;
  Duration jwks_refresh = std::chrono::minutes(5);
  std::string jwks_ca;
  // Accepted "alg" values (RFC 7518 3.1, RFC 8037 3.1): RS256, ES256, EdDSA, HS256. Empty:
  // every one a configured key can verify. "none" is never accepted.
  std::vector<std::string> algorithms;
  std::string issuer;                              // required "iss" when set
  std::vector<std::string> audiences;              // when set, "aud" must name one of them
  Duration clock_skew = std::chrono::seconds(30);  // allowance on exp and nbf
  std::vector<std::string> required_claims;        // must be present (any value)
  // Claims passed to the upstream as request headers: claim name -> header name. A
  // client's own copies of these headers are always removed.
  std::vector<std::pair<std::string, std::string>> claim_headers;
  bool strip_token = false;  // remove the token from what the upstream sees
  // A WebSocket whose token expires gets Close 1008 "token expired" then: each at its own
  // point of [exp, exp + clock_skew), so clients of tokens issued together do not all
  // reconnect at once.
  bool close_on_expiry = true;
};

// type = "forward": a subrequest to an HTTP auth service decides (proxy/auth/forward_auth.h).
struct ForwardAuth {
  std::string upstream;  // an [[upstream]] serving the auth service (pooled, balanced)
  std::string path = "/";
  // The request's header fields sent along (lowercase names), besides the method and URI
  // (as X-Forwarded-Method and X-Forwarded-Uri).
  std::vector<std::string> request_headers{"authorization", "cookie"};
  // A 2xx answer's header fields copied to the upstream request (lowercase names; the
  // client's own copies are removed).
  std::vector<std::string> response_headers;
  Duration timeout = std::chrono::seconds(5);
  // An auth service that cannot be reached or times out: 503, or let the request through.
  bool failure_mode_allow = false;
  // Decisions cached per worker for cache_ttl (0: off), keyed by the values of
  // cache_key's header fields (default: request_headers), at most cache_entries.
  Duration cache_ttl = std::chrono::seconds(0);
  std::vector<std::string> cache_key;
  std::size_t cache_entries = 10000;
};

// Header fields a forward-auth subrequest never copies from the client's request: those
// the gateway writes itself (Host, framing, X-Forwarded-*), hop-by-hop ones (RFC 9110
// 7.6.1) and proxy credentials. The loader refuses them in request_headers; the
// subrequest builder (proxy/auth/forward_auth_request.cc) skips them. Case-insensitive.
bool forward_auth_never_copied(std::string_view name);

struct RouteAuth {
  enum class Type { None, Jwt, Forward };
  Type type = Type::None;
  JwtAuth jwt;          // Type::Jwt
  ForwardAuth forward;  // Type::Forward
  SourcePosition where;
};

struct Route {
  std::string name;        // defaults to "<host><path>"
  std::string host = "*";  // "*", "example.com", "*.example.com" (matches sub.example.com)
  std::string path = "/";  // path prefix, matched on segment boundaries
  std::string upstream;    // name of an [[upstream]]; validated to exist
  std::vector<std::string> allowed_origins;  // empty: any Origin is accepted
  // With allowed_origins: a request without Origin is refused (403) too. Off by default:
  // browsers always send Origin, other clients need not (gateway/websocket_handshake.h).
  bool require_origin = false;
  // Ordinary HTTP requests (not upgrades) are forwarded to the upstream unless this is
  // set; then they get 426 (405 for methods other than GET), as a WebSocket-only
  // endpoint (gateway/exchange/http_exchange.h).
  bool websocket_only = false;
  // Forwarded requests and their responses get "Via: 1.1 wsgate" (RFC 9110 7.6.3; the
  // version is the one the message arrived in). Off by default: it tells the world
  // which proxy runs here, and most applications never read it.
  bool via = false;
  // A forwarded request's content above this -> 413.
  std::uint64_t max_body_size = 1024ull * 1024 * 1024;
  std::uint64_t max_message_size = 16ull * 1024 * 1024;  // per message, each direction -> 1009
  // High watermark of each direction's buffering; reading pauses above it and resumes
  // below half of it.
  std::size_t buffer_size = 256 * 1024;
  Duration connect_timeout = std::chrono::seconds(5);  // TCP connect to an upstream -> 504
  Duration upstream_handshake_timeout = std::chrono::seconds(10);  // upstream's 101 -> 504
  Duration idle_timeout = std::chrono::seconds(300);  // no bytes either way -> close 1001
  // Keepalive pings from the gateway (conf/config_keepalive.cc): every ping_interval
  // (0: off) a Ping to the sides in ping_to; a side whose Pong is not back within
  // ping_timeout is taken for dead (1006 "... ping timeout"), the other side gets 1001.
  Duration ping_interval = std::chrono::seconds(0);
  Duration ping_timeout = std::chrono::seconds(10);
  enum class PingTo { Client, Upstream, Both };
  PingTo ping_to = PingTo::Both;
  // Data messages per second a client may send (token bucket; 0: no limit) and how many
  // may come at once (0: one second's worth). Over the rate -> close 1008.
  std::uint32_t max_message_rate = 0;
  std::uint32_t max_message_burst = 0;
  RouteAuth auth;  // [route.auth]
  SourcePosition where;
};

enum class AccessLogFormat { Text, Json };
// The error log (stderr): the least severe level written, and the line format.
enum class LogLevel { Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };  // logfmt lines, or one JSON object per line

// The admin HTTP listener (/metrics, /connections, /healthz, /ready, the dashboard).
// Runs only when the file has an [admin] table.
struct Admin {
  bool enabled = false;
  HostPort address{"127.0.0.1", 9090};
  // Bearer tokens (RFC 6750 2.1), from `token` (both), `read_token`, `write_token` or
  // their `*_file` forms. read_token guards GET /metrics and /connections ("" = open);
  // write_token guards POST /reload and the close endpoints, and reads too. Without a
  // write token, a write must come from this host: Host is the admin address or
  // localhost, and the request carries X-Wsgate-Admin (metrics/admin_server.h).
  std::string read_token;
  std::string write_token;
  // Per-connection series on /metrics (wsgate_connection_*), for at most
  // per_connection_limit live connections, oldest first.
  bool per_connection_metrics = false;
  unsigned per_connection_limit = 1000;
  SourcePosition where;
};

// One entry of [[connect.allow]]: a destination a CONNECT tunnel may reach. Exactly one of
// `host` and `network` is set. Loopback, link-local, private and other special addresses
// are allowed only by a `network` rule inside their range (proxy/connect/connect_acl.h).
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
};
struct ConnectRule {
  std::string host;                  // "example.com", "*.example.com", "*" (lowercase); or ""
  std::optional<IpNetwork> network;  // cidr = "10.0.0.0/8"
  std::vector<PortRange> ports;      // required, non-empty
  SourcePosition where;
};
// [[connect.user]]: a proxy user (Proxy-Authorization: Basic). The hash is
// "pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>" (wsgate --hash-password).
struct ConnectUser {
  std::string name;
  std::string password_hash;
  SourcePosition where;
};
// [connect]: what CONNECT tunnels may reach and how they are timed. Used only by
// listeners with connect = true; no allow rule denies every destination.
struct Connect {
  std::vector<ConnectRule> allow;
  std::vector<ConnectUser> users;  // non-empty: every tunnel needs Proxy-Authorization
  Duration resolve_timeout = std::chrono::seconds(5);  // DNS answer for the target -> 504
  Duration connect_timeout = std::chrono::seconds(5);  // TCP connect per address -> 504
  Duration idle_timeout = std::chrono::seconds(300);   // no bytes either way -> closed
  std::size_t buffer_size = 256 * 1024;                // per-direction high watermark
  SourcePosition where;
};

// [limits]: how many connections the process and each client may hold, and how fast a
// client may open new ones (gateway/client_limits.h). A "connection" is an accepted TCP
// connection or an HTTP/2 WebSocket stream. Every limit is off at 0 (the default).
struct Limits {
  std::uint64_t max_connections = 0;        // whole process; over -> 503 (Retry-After)
  unsigned max_connections_per_client = 0;  // per client address; over -> 429 (Retry-After)
  // Token bucket per client address: refills at this rate (fractions allowed, e.g. 0.5),
  // holds at most new_connections_burst tokens; a new connection without a token -> 429.
  double new_connections_per_second_per_client = 0;
  unsigned new_connections_burst = 0;  // 0 in the file's absence: max(1, ceil(rate))
  // IPv6 clients are grouped by this prefix length (one host owns a /64); IPv4 by address.
  unsigned client_ipv6_prefix = 64;
  // Clients tracked at once (fixed memory, about 64 bytes each); when every entry of a
  // client's hash set holds open connections, a new client is refused with 503.
  std::size_t client_table_size = 65536;
  bool per_client() const {
    return max_connections_per_client > 0 || new_connections_per_second_per_client > 0;
  }
  bool any() const { return max_connections > 0 || per_client(); }
  SourcePosition where;
};

struct Config {
  std::string source_file;  // path the snapshot was loaded from
  unsigned workers = 0;     // 0 in the file means one per core; load_config resolves it (>= 1)
  Duration drain_timeout = std::chrono::seconds(10);  // SIGTERM: wait this long for closes
  // A drain (SIGTERM, a server leaving the pool) closes its WebSockets evenly over this
  // window rather than all at once, so clients do not reconnect in one storm; 0: at once.
  // Shorter than drain_timeout.
  Duration drain_spread = std::chrono::seconds(0);
  // SIGTERM: /ready answers 503 at once, but the listeners stay open and nothing is
  // closed for this long, so load balancers that follow /ready stop sending first; then
  // the drain above. 0: the drain starts at once.
  Duration drain_delay = std::chrono::seconds(0);
  // Binary upgrade (docs/operations.md): a unix socket (SOCK_SEQPACKET) on which this
  // process hands its listening sockets to a new wsgate started with --takeover; "" off.
  std::string upgrade_socket;
  // After a takeover, this process's connections run on for at most this long; then the
  // drain above (Close 1001 spread over drain_spread, drain_timeout).
  Duration upgrade_deadline = std::chrono::minutes(10);
  std::string access_log = "-";  // "-" stdout, "stderr", "" off, otherwise a file path (appended)
  AccessLogFormat access_log_format = AccessLogFormat::Text;
  LogLevel log_level = LogLevel::Info;
  LogFormat log_format = LogFormat::Text;
  Admin admin;
  // DNS servers for resolve_interval ("ip:port"); empty: those of /etc/resolv.conf.
  std::vector<HostPort> nameservers;
  // Peers (after any PROXY header) whose X-Forwarded-For is believed: the client is the
  // last address of that header's chain that is not itself a trusted proxy. Empty: the
  // header is passed on, never believed.
  std::vector<IpNetwork> trusted_proxies;
  std::vector<Listener> listeners;
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;  // in file order; the router picks the most specific match
  Connect connect;            // [connect]: CONNECT tunnels (listeners with connect = true)
  Limits limits;

  const Upstream* find_upstream(const std::string& name) const {
    for (const auto& u : upstreams)
      if (u.name == name) return &u;
    return nullptr;
  }
};

using ConfigPtr = std::shared_ptr<const Config>;

}  // namespace wsgate::conf
