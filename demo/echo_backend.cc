// wsgate-echo-backend: a small WebSocket echo server for the README demo and the
// benchmarks. Single-threaded libevent loop, one bufferevent per connection, our own
// codecs (http1_parser, websocket_key, frame_codec). Data frames are echoed frame by
// frame as they stream in (never a whole message in memory); reads pause while a
// connection's output holds more than 1 MiB.
//
//   wsgate-echo-backend [--listen 127.0.0.1:9001] [--quiet]
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "proxy/codec/frame_codec.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/websocket_key.h"
#include "proxy/libevent_ptr.h"

namespace {

using namespace wsgate;

constexpr std::size_t kHighWatermark = 1 << 20;            // pause reading above this much output
constexpr std::size_t kLowWatermark = kHighWatermark / 2;  // resume at or below this
constexpr std::size_t kChunk = 64 * 1024;                  // payload bytes moved per step

enum class State { Handshake, Open, Closing };

struct Conn {
  uint64_t id = 0;
  BufferEventPtr bev;
  State state = State::Handshake;
  ws::FrameValidator validator{ws::FrameRules{}};  // client-to-server, no extensions
  ws::FrameHeader frame;      // the data frame whose payload is streaming through
  uint64_t payload_left = 0;  // > 0: in the middle of that payload
  uint64_t payload_pos = 0;   // mask offset of the next payload byte
};

struct Server {
  EventBasePtr base;  // first member: destroyed last
  ListenerPtr listener;
  EventPtr signals[2];
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;
  uint64_t next_id = 1;
  bool quiet = false;
};
Server g_server;

void log(const Conn& c, const char* what) {
  if (!g_server.quiet) std::fprintf(stderr, "conn %" PRIu64 ": %s\n", c.id, what);
}

// Frees the connection; always the last thing a callback does with it (libevent holds
// its own reference to the bufferevent until the callback returns).
void destroy(Conn& c) {
  g_server.conns.erase(&c);
}

evbuffer* output(Conn& c) {
  return bufferevent_get_output(c.bev.get());
}

// Stop reading and close once the output has drained (write_cb).
void start_closing(Conn& c) {
  c.state = State::Closing;
  bufferevent_disable(c.bev.get(), EV_READ);
}

// RFC 6455 5.2: an unmasked server frame header, in its minimal length encoding.
void add_frame_header(evbuffer* out, bool fin, uint8_t opcode, uint64_t len) {
  const int ext = len < 126 ? 0 : len <= 0xFFFF ? 2 : 8;  // extended length bytes
  uint8_t h[10] = {static_cast<uint8_t>((fin ? 0x80 : 0) | opcode), static_cast<uint8_t>(len)};
  if (ext != 0) h[1] = ext == 2 ? 126 : 127;
  for (int i = 0; i < ext; ++i) h[2 + i] = static_cast<uint8_t>(len >> (8 * (ext - 1 - i)));
  evbuffer_add(out, h, 2 + static_cast<std::size_t>(ext));
}

void send_close(Conn& c, uint16_t code, std::string_view reason) {
  uint8_t frame[ws::kMaxHeaderSize + ws::kMaxControlPayload];
  evbuffer_add(output(c), frame, ws::build_close_frame(frame, code, reason, nullptr));
  start_closing(c);
}

// RFC 6455 7.1.7: fail the connection with a close code that says why.
void fail(Conn& c, uint16_t code, std::string_view why) {
  if (!g_server.quiet) {
    std::fprintf(stderr, "conn %" PRIu64 ": closing with %u: %.*s\n", c.id, unsigned{code},
                 static_cast<int>(why.size()), why.data());
  }
  send_close(c, code, why);
}

// Any non-101 answer: a short text body, then close.
void http_reply(Conn& c, int status, std::string_view body, std::string_view extra = "") {
  const char* reason = status == 200   ? "OK"
                       : status == 404 ? "Not Found"
                       : status == 426 ? "Upgrade Required"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 505 ? "HTTP Version Not Supported"
                                       : "Bad Request";
  evbuffer_add_printf(output(c),
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n%.*s\r\n%.*s\n",
                      status, reason, body.size() + 1, static_cast<int>(extra.size()), extra.data(),
                      static_cast<int>(body.size()), body.data());
  if (status != 200) log(c, "bad request");
  start_closing(c);
}

// The opening handshake (RFC 6455 4.2.1 / 4.2.2). Returns true once the connection is
// Open; false while more bytes are needed or after an HTTP answer.
bool handle_handshake(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev.get());
  const http1::Limits limits;
  const std::size_t n = std::min(evbuffer_get_length(in), limits.max_head_bytes + 1);
  const auto* data = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ssize_t>(n)));
  http1::RequestHead req;
  const http1::ParseResult r = http1::parse_request_head({data, n}, limits, req);
  if (r.state == http1::ParseState::Incomplete) return false;
  if (r.state == http1::ParseState::Error) {
    http_reply(c, r.error_status, r.error_reason);
    return false;
  }
  evbuffer_drain(in, r.head_length);

  const http1::Header* upgrade = req.find("Upgrade");
  if (upgrade == nullptr || !http1::header_has_token(upgrade->value, "websocket")) {
    if (req.method == "GET" && req.target == "/") {
      http_reply(c, 200, "wsgate demo echo backend");
    } else {
      http_reply(c, 404, "not found: this server answers GET / and WebSocket upgrades");
    }
    return false;
  }
  const http1::Header* connection = req.find("Connection");
  const http1::Header* version = req.find("Sec-WebSocket-Version");
  const http1::Header* key = req.find("Sec-WebSocket-Key");
  // RFC 6455 4.2.1 items 1-6.
  if (req.method != "GET" || req.version_minor < 1) {
    http_reply(c, 400, "a WebSocket handshake is a GET over HTTP/1.1");
  } else if (req.find("Host") == nullptr) {
    http_reply(c, 400, "missing Host");
  } else if (connection == nullptr || !http1::header_has_token(connection->value, "upgrade")) {
    http_reply(c, 400, "Connection must contain Upgrade");
  } else if (version == nullptr || version->value != "13") {
    // RFC 6455 4.4: answer 426 with the versions we speak.
    http_reply(c, 426, "Sec-WebSocket-Version must be 13", "Sec-WebSocket-Version: 13\r\n");
  } else if (key == nullptr || req.count("Sec-WebSocket-Key") != 1 ||
             !ws::is_valid_key(key->value)) {
    http_reply(c, 400, "invalid Sec-WebSocket-Key");
  } else {
    std::string resp =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        ws::compute_accept(key->value) + "\r\n";
    // RFC 6455 4.2.2 item 5.5: select one offered subprotocol; we take the first.
    if (const http1::Header* proto = req.find("Sec-WebSocket-Protocol")) {
      std::string_view first = proto->value.substr(0, proto->value.find(','));
      while (!first.empty() && (first.back() == ' ' || first.back() == '\t')) {
        first.remove_suffix(1);
      }
      if (!first.empty()) resp.append("Sec-WebSocket-Protocol: ").append(first).append("\r\n");
    }
    resp += "\r\n";
    evbuffer_add(output(c), resp.data(), resp.size());
    c.state = State::Open;
    log(c, "open");
    return true;
  }
  return false;
}

// A whole control frame (<= 125 bytes, RFC 6455 5.5) is in the input.
void handle_control(Conn& c, const ws::FrameHeader& h) {
  uint8_t buf[ws::kMaxHeaderSize + ws::kMaxControlPayload];
  const std::size_t total = h.header_length + h.payload_length;
  evbuffer_remove(bufferevent_get_input(c.bev.get()), buf, total);
  uint8_t* payload = buf + h.header_length;
  const auto len = static_cast<std::size_t>(h.payload_length);
  ws::apply_mask(payload, len, h.mask.data(), 0);
  switch (static_cast<ws::Opcode>(h.opcode)) {
    case ws::Opcode::Ping:  // RFC 6455 5.5.3: Pong with the Ping's payload
      add_frame_header(output(c), true, static_cast<uint8_t>(ws::Opcode::Pong), len);
      evbuffer_add(output(c), payload, len);
      break;
    case ws::Opcode::Close: {  // RFC 6455 5.5.1: answer with a Close, echoing the code
      const ws::ClosePayload cp = ws::parse_close_payload(payload, len, nullptr);
      if (!cp.valid) return fail(c, ws::close_code::kProtocolError, "invalid close payload");
      log(c, "close");
      send_close(c, cp.code, {});
      break;
    }
    default:  // Pong: unsolicited, ignored (5.5.3)
      break;
  }
}

// Consumes one frame header or one slice of payload. False when it needs more bytes or
// the connection is no longer Open.
bool handle_frame(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev.get());
  if (c.payload_left == 0) {
    uint8_t hb[ws::kMaxHeaderSize];
    const ev_ssize_t got = evbuffer_copyout(in, hb, sizeof hb);
    ws::FrameHeader h;
    const ws::HeaderStatus st = ws::parse_frame_header(hb, static_cast<std::size_t>(got), h);
    if (st == ws::HeaderStatus::NeedMore) return false;
    if (st == ws::HeaderStatus::Malformed) {
      fail(c, ws::close_code::kProtocolError, "malformed frame header");
      return false;
    }
    if (const uint16_t code = c.validator.check(h); code != 0) {
      fail(c, code, c.validator.last_error());
      return false;
    }
    if (h.is_control()) {
      if (evbuffer_get_length(in) < h.header_length + h.payload_length) return false;
      handle_control(c, h);
      return c.state == State::Open;
    }
    evbuffer_drain(in, h.header_length);
    add_frame_header(output(c), h.fin, h.opcode, h.payload_length);  // same opcode and FIN
    c.frame = h;
    c.payload_left = h.payload_length;
    c.payload_pos = 0;
    return true;
  }
  // Stream the payload: one copy straight into the output buffer, unmasked there.
  const std::size_t avail = evbuffer_get_length(in);
  if (avail == 0) return false;
  const auto n = static_cast<std::size_t>(std::min<uint64_t>({c.payload_left, avail, kChunk}));
  evbuffer_iovec v;
  evbuffer_reserve_space(output(c), static_cast<ev_ssize_t>(n), &v, 1);
  evbuffer_remove(in, v.iov_base, n);
  ws::apply_mask(static_cast<uint8_t*>(v.iov_base), n, c.frame.mask.data(), c.payload_pos);
  v.iov_len = n;
  evbuffer_commit_space(output(c), &v, 1);
  c.payload_left -= n;
  c.payload_pos += n;
  return true;
}

void read_cb(bufferevent* bev, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (c.state == State::Handshake) handle_handshake(c);
  while (c.state == State::Open && handle_frame(c)) {
  }
  evbuffer* in = bufferevent_get_input(bev);
  if (c.state == State::Closing) evbuffer_drain(in, evbuffer_get_length(in));
  // Write now rather than a loop turn later: saves a wakeup and two epoll_ctl per echo.
  // libevent takes over writing (EV_WRITE) only when the socket buffer is full.
  evbuffer* out = output(c);
  if (!(bufferevent_get_enabled(bev) & EV_WRITE) && evbuffer_get_length(out) > 0) {
    evbuffer_unfreeze(out, 1);  // a bufferevent freezes its output's front between writes
    const int written = evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    if (written < 0 && errno != EAGAIN) return destroy(c);
    if (evbuffer_get_length(out) > 0) bufferevent_enable(bev, EV_WRITE);
  }
  // RFC 6455 7.1.1: the server closes the TCP connection first, once its Close is out.
  if (c.state == State::Closing && evbuffer_get_length(out) == 0) return destroy(c);
  if (evbuffer_get_length(out) > kHighWatermark) {
    bufferevent_disable(bev, EV_READ);  // backpressure: the client is not reading its echoes
  }
}

// libevent wrote some of the output and at most kLowWatermark bytes are left.
void write_cb(bufferevent* bev, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (evbuffer_get_length(output(c)) == 0) {
    if (c.state == State::Closing) return destroy(c);
    bufferevent_disable(bev, EV_WRITE);  // read_cb writes directly again
  }
  if (c.state != State::Closing) bufferevent_enable(bev, EV_READ);  // below kLowWatermark
}

void event_cb(bufferevent*, short events, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    log(c, (events & BEV_EVENT_ERROR) ? "connection error" : "peer closed");
    destroy(c);
  }
}

void accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void*) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // echoes are latency-bound
  auto conn = std::make_unique<Conn>();
  Conn& c = *conn;
  c.id = g_server.next_id++;
  c.bev.reset(bufferevent_socket_new(g_server.base.get(), fd, BEV_OPT_CLOSE_ON_FREE));
  if (!c.bev) {
    evutil_closesocket(fd);
    return;
  }
  bufferevent_setcb(c.bev.get(), read_cb, write_cb, event_cb, &c);
  bufferevent_setwatermark(c.bev.get(), EV_WRITE, kLowWatermark, 0);
  bufferevent_disable(c.bev.get(), EV_WRITE);  // on by default; only while output is stuck
  bufferevent_enable(c.bev.get(), EV_READ);
  g_server.conns.emplace(&c, std::move(conn));
}

void signal_cb(evutil_socket_t, short, void*) {
  event_base_loopbreak(g_server.base.get());
}

// "127.0.0.1:9001" or "[::1]:9001" (port 0: the kernel picks one). Numeric hosts only.
bool parse_listen(const std::string& s, sockaddr_storage& ss, socklen_t& len) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host.c_str(), s.c_str() + colon + 1, &hints, &ai) != 0) return false;
  std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
  len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return true;
}

std::string format_address(const sockaddr_storage& ss, socklen_t len) {
  char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
  getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof host, port, sizeof port,
              NI_NUMERICHOST | NI_NUMERICSERV);
  return ss.ss_family == AF_INET6 ? "[" + std::string(host) + "]:" + port
                                  : std::string(host) + ":" + port;
}

int usage() {
  std::fprintf(stderr, "usage: wsgate-echo-backend [--listen 127.0.0.1:9001] [--quiet]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:9001";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (arg == "--quiet") {
      g_server.quiet = true;
    } else {
      return usage();
    }
  }
  sockaddr_storage ss{};
  socklen_t ss_len = 0;
  if (!parse_listen(listen, ss, ss_len)) {
    std::fprintf(stderr, "invalid --listen address '%s' (host:port or [v6]:port)\n",
                 listen.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  rlimit nofile{};  // many connections: raise the fd limit as far as allowed
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  g_server.base.reset(event_base_new());
  g_server.listener.reset(evconnlistener_new_bind(
      g_server.base.get(), accept_cb, nullptr, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
      reinterpret_cast<sockaddr*>(&ss), static_cast<int>(ss_len)));
  if (!g_server.listener) {
    std::fprintf(stderr, "cannot listen on %s: %s\n", listen.c_str(), std::strerror(errno));
    return 1;
  }
  // The real port when --listen asked for port 0.
  getsockname(evconnlistener_get_fd(g_server.listener.get()), reinterpret_cast<sockaddr*>(&ss),
              &ss_len);
  for (int i = 0; i < 2; ++i) {
    g_server.signals[i].reset(
        evsignal_new(g_server.base.get(), i == 0 ? SIGINT : SIGTERM, signal_cb, nullptr));
    event_add(g_server.signals[i].get(), nullptr);
  }

  std::printf("echo backend listening on %s\n", format_address(ss, ss_len).c_str());
  std::fflush(stdout);
  event_base_dispatch(g_server.base.get());

  return 0;  // ~Server frees connections, listener and signal events, then the base
}
