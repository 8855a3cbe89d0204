// wsgate-echo-backend: a small WebSocket echo server for the README demo and the
// benchmarks. Single-threaded libevent loop, one bufferevent per connection, our own
// codecs (http1_parser, websocket_key, frame_codec). Data frames are echoed frame by
// frame as they stream in (never a whole message in memory); reads pause while a
// connection's output holds more than 1 MiB.
//
//   wsgate-echo-backend [--listen 127.0.0.1:9001] [--quiet]
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

#include "proxy/frame_codec.h"
#include "proxy/http1_parser.h"
#include "proxy/libevent_ptr.h"
#include "proxy/websocket_key.h"

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
  bool read_paused = false;
  ws::FrameValidator validator{ws::FrameRules{}};  // client-to-server, no extensions
  ws::FrameHeader frame;      // the data frame whose payload is streaming through
  uint64_t payload_left = 0;  // > 0: in the middle of that payload
  uint64_t payload_pos = 0;   // mask offset of the next payload byte
};

struct Server {
  EventBasePtr base;
  ListenerPtr listener;
  EventPtr sigint, sigterm;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;
  uint64_t next_id = 1;
  bool quiet = false;
};
Server g_server;

void log(const Conn& c, const char* what) {
  if (!g_server.quiet) std::fprintf(stderr, "conn %" PRIu64 ": %s\n", c.id, what);
}

void destroy(Conn& c) {
  g_server.conns.erase(&c);
}  // last action of any callback

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
  uint8_t h[10];
  h[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | opcode);
  std::size_t n = 2;
  if (len < 126) {
    h[1] = static_cast<uint8_t>(len);
  } else if (len <= 0xFFFF) {
    h[1] = 126;
    for (int i = 0; i < 2; ++i) h[2 + i] = static_cast<uint8_t>(len >> (8 - 8 * i));
    n = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
    n = 10;
  }
  evbuffer_add(out, h, n);
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

void http_reply(Conn& c, int status, std::string_view reason, std::string_view extra_headers,
                std::string_view body) {
  evbuffer_add_printf(output(c),
                      "HTTP/1.1 %d %.*s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n%.*s\r\n%.*s",
                      status, static_cast<int>(reason.size()), reason.data(), body.size(),
                      static_cast<int>(extra_headers.size()), extra_headers.data(),
                      static_cast<int>(body.size()), body.data());
  start_closing(c);
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

void http_error(Conn& c, int status, std::string_view why, std::string_view extra = "") {
  log(c, "bad request");
  http_reply(c, status, reason_phrase(status), extra, std::string(why) + "\n");
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
    http_error(c, r.error_status, r.error_reason);
    return false;
  }
  evbuffer_drain(in, r.head_length);

  const http1::Header* upgrade = req.find("Upgrade");
  if (upgrade == nullptr || !http1::header_has_token(upgrade->value, "websocket")) {
    if (req.method == "GET" && req.target == "/") {
      http_reply(c, 200, "OK", "", "wsgate demo echo backend\n");
    } else {
      http_error(c, 404, "not found: this server answers GET / and WebSocket upgrades");
    }
    return false;
  }
  const http1::Header* connection = req.find("Connection");
  const http1::Header* version = req.find("Sec-WebSocket-Version");
  const http1::Header* key = req.find("Sec-WebSocket-Key");
  // RFC 6455 4.2.1 items 1-6.
  if (req.method != "GET" || req.version_minor < 1) {
    http_error(c, 400, "a WebSocket handshake is a GET over HTTP/1.1");
  } else if (req.find("Host") == nullptr) {
    http_error(c, 400, "missing Host");
  } else if (connection == nullptr || !http1::header_has_token(connection->value, "upgrade")) {
    http_error(c, 400, "Connection must contain Upgrade");
  } else if (version == nullptr || version->value != "13") {
    // RFC 6455 4.4: answer 426 with the versions we speak.
    http_error(c, 426, "Sec-WebSocket-Version must be 13", "Sec-WebSocket-Version: 13\r\n");
  } else if (key == nullptr || req.count("Sec-WebSocket-Key") != 1 ||
             !ws::is_valid_key(key->value)) {
    http_error(c, 400, "invalid Sec-WebSocket-Key");
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

void read_cb(bufferevent*, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (c.state == State::Handshake) handle_handshake(c);
  while (c.state == State::Open && handle_frame(c)) {
  }
  evbuffer* in = bufferevent_get_input(c.bev.get());
  if (c.state == State::Closing) evbuffer_drain(in, evbuffer_get_length(in));
  if (c.state == State::Open && evbuffer_get_length(output(c)) > kHighWatermark) {
    c.read_paused = true;  // backpressure: the client is not reading its echoes
    bufferevent_disable(c.bev.get(), EV_READ);
  }
}

// Called after a write once the output is at or below kLowWatermark.
void write_cb(bufferevent*, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (c.state == State::Closing) {
    // RFC 6455 7.1.1: the server closes the TCP connection first.
    if (evbuffer_get_length(output(c)) == 0) destroy(c);
    return;
  }
  if (c.read_paused) {
    c.read_paused = false;
    bufferevent_enable(c.bev.get(), EV_READ);
  }
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
  bufferevent_enable(c.bev.get(), EV_READ | EV_WRITE);
  g_server.conns.emplace(&c, std::move(conn));
}

void signal_cb(evutil_socket_t, short, void*) {
  event_base_loopbreak(g_server.base.get());
}

// "127.0.0.1:9001" or "[::1]:9001" (port 0: the kernel picks one). Numeric hosts only.
bool parse_listen(const std::string& s, sockaddr_storage& ss, int& len) {
  const bool v6 = !s.empty() && s.front() == '[';
  const std::size_t colon = v6 ? s.find("]:") + 1 : s.rfind(':');
  if (colon == 0 || colon == std::string::npos || colon + 1 >= s.size()) return false;
  const std::string host = v6 ? s.substr(1, colon - 2) : s.substr(0, colon);
  const std::string port_str = s.substr(colon + 1);
  if (port_str.size() > 5 || port_str.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const int port = std::stoi(port_str);
  if (port > 65535) return false;
  ss = {};
  if (v6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof a;
    return evutil_inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) == 1;
  }
  auto& a = reinterpret_cast<sockaddr_in&>(ss);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  len = sizeof a;
  return evutil_inet_pton(AF_INET, host.c_str(), &a.sin_addr) == 1;
}

std::string format_address(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    evutil_inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a.sin6_port));
  }
  const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
  evutil_inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(a.sin_port));
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
  int ss_len = 0;
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
  g_server.listener.reset(evconnlistener_new_bind(g_server.base.get(), accept_cb, nullptr,
                                                  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
                                                  reinterpret_cast<sockaddr*>(&ss), ss_len));
  if (!g_server.listener) {
    std::fprintf(stderr, "cannot listen on %s: %s\n", listen.c_str(), std::strerror(errno));
    return 1;
  }
  socklen_t bound_len = sizeof ss;
  getsockname(evconnlistener_get_fd(g_server.listener.get()), reinterpret_cast<sockaddr*>(&ss),
              &bound_len);  // the real port when --listen asked for port 0
  g_server.sigint.reset(evsignal_new(g_server.base.get(), SIGINT, signal_cb, nullptr));
  g_server.sigterm.reset(evsignal_new(g_server.base.get(), SIGTERM, signal_cb, nullptr));
  event_add(g_server.sigint.get(), nullptr);
  event_add(g_server.sigterm.get(), nullptr);

  std::printf("echo backend listening on %s\n", format_address(ss).c_str());
  std::fflush(stdout);
  event_base_dispatch(g_server.base.get());

  // Free everything before the base: connections, listener, signal events.
  g_server.conns.clear();
  g_server.listener.reset();
  g_server.sigint.reset();
  g_server.sigterm.reset();
  g_server.base.reset();
  return 0;
}
