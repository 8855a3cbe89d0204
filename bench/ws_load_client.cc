// wsgate-bench-client: WebSocket load generator for the benchmarks. One thread, one
// libevent loop, N connections. Closed loop by default (each connection sends one masked
// binary message, waits for its echo, repeats); with --rate, open loop: messages go out
// on a fixed global schedule spread round-robin over the connections, and latency is
// measured from the scheduled send time, so a stalled server cannot hide its queueing
// (no coordinated omission). Prints one JSON line of results.
//
// Timeline: connect and handshake every connection (5 s limit; any failure: exit 1), then
// --warmup seconds unmeasured (default 2), --duration seconds measured, then Close 1000
// on every connection (2 s limit). "errors" counts lost connections, protocol errors,
// echoes of the wrong size and open-loop sends skipped because a connection already had
// 1024 messages in flight.
//
//   wsgate-bench-client --url ws://127.0.0.1:8080/echo --connections 100 --size 64
//                       --duration 10 [--warmup 2] [--rate N]
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "proxy/codec/frame_codec.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/websocket_key.h"
#include "proxy/libevent_ptr.h"

namespace {

using namespace wsgate;

constexpr std::size_t kMaxInFlight = 1024;                 // per connection, open loop
constexpr std::size_t kMaxSamples = std::size_t{1} << 23;  // latency reservoir (64 MiB)
constexpr long long kHandshakeTimeoutMs = 5000;
constexpr long long kCloseTimeoutMs = 2000;
constexpr long long kTickUs = 250;  // open-loop scheduler tick

struct Options {
  std::string authority, path;  // from --url
  bool tls = false;             // wss:// (certificates are not verified: a benchmark)
  sockaddr_storage addr{};
  int addr_len = 0;
  int connections = 100;
  std::size_t size = 64;
  double duration_s = 10, warmup_s = 2, rate = 0;  // rate 0: closed loop
};

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// xorshift64*: masking keys and reservoir indices; fast, not for secrets.
struct Rng {
  uint64_t s = now_ns() | 1;
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
};

// Round-trip times in ns. Preallocated; past kMaxSamples it keeps a uniform random
// subset (reservoir sampling), so percentiles stay unbiased with no allocation.
struct Latencies {
  std::vector<uint64_t> samples;
  uint64_t seen = 0;
  void add(uint64_t ns, Rng& rng) {
    ++seen;
    if (samples.size() < samples.capacity()) {
      samples.push_back(ns);
    } else if (const uint64_t j = rng.next() % seen; j < samples.size()) {
      samples[j] = ns;
    }
  }
  double percentile_us(double p) {
    if (samples.empty()) return 0;
    const auto rank = static_cast<std::size_t>(p * static_cast<double>(samples.size()));
    const auto it =
        samples.begin() + static_cast<std::ptrdiff_t>(std::min(rank, samples.size() - 1));
    std::nth_element(samples.begin(), it, samples.end());
    return static_cast<double>(*it) / 1000.0;
  }
};

enum class ConnState { Connecting, Handshaking, Open, Closing, Closed };
enum class Phase { Connecting, Warmup, Measuring, Closing };

struct Conn {
  std::size_t index = 0;
  BufferEventPtr bev;
  ConnState state = ConnState::Connecting;
  std::string key;
  ws::FrameValidator validator{ws::FrameRules{ws::Direction::ServerToClient, false, 0}};
  uint64_t payload_left = 0;  // of the data frame being read
  bool frame_fin = false;
  uint64_t message_bytes = 0;
  bool close_received = false;  // then only the server's TCP close is awaited
  uint64_t* sent_at = nullptr;  // ring of send times (kMaxInFlight, or 1 in closed loop)
  std::size_t ring_head = 0, in_flight = 0, ring_cap = 1;
};

struct Bench {
  Options opt;
  EventBasePtr base;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<uint64_t> ring_storage;
  std::vector<uint8_t> payload;  // the message body, unmasked
  Latencies lat;
  Rng rng;
  Phase phase = Phase::Connecting;
  std::size_t handshakes = 0, closed = 0;
  uint64_t messages = 0, errors = 0;
  uint64_t measure_start = 0, measure_end = 0;
  uint64_t schedule_start = 0, scheduled = 0;  // open loop
  bool handshake_failed = false;
  EventPtr tick;
  std::unique_ptr<Timer> warmup_done, run_done, close_deadline;
};
Bench g;

void on_all_closed() {
  event_base_loopexit(g.base.get(), nullptr);
}

void mark_closed(Conn& c) {
  if (c.state == ConnState::Closed) return;
  c.state = ConnState::Closed;
  c.bev.reset();  // safe inside its own callback: libevent holds a reference
  if (++g.closed == g.conns.size() && g.phase == Phase::Closing) on_all_closed();
}

void handshake_failed(Conn& c, const std::string& why) {
  std::fprintf(stderr, "connection %zu: handshake failed: %s\n", c.index, why.c_str());
  g.handshake_failed = true;
  event_base_loopbreak(g.base.get());
}

// RFC 6455 5.2/5.3: a masked client frame header with a fresh masking key.
std::size_t frame_header(uint8_t* h, uint8_t opcode, uint64_t len, uint8_t mask[4]) {
  const int ext = len < 126 ? 0 : len <= 0xFFFF ? 2 : 8;  // extended length bytes
  h[0] = static_cast<uint8_t>(0x80 | opcode);
  h[1] = static_cast<uint8_t>(0x80 | (ext == 0 ? len : ext == 2 ? 126 : 127));
  for (int i = 0; i < ext; ++i) h[2 + i] = static_cast<uint8_t>(len >> (8 * (ext - 1 - i)));
  const auto key = static_cast<uint32_t>(g.rng.next());
  std::memcpy(mask, &key, 4);
  std::memcpy(h + 2 + ext, mask, 4);
  return 2 + static_cast<std::size_t>(ext) + 4;
}

// Writes the output now rather than a loop turn later (saves a wakeup and two epoll_ctl
// per message). libevent takes over (EV_WRITE) only when the socket buffer is full, and
// write_cb hands the write side back once it has drained. A write error shows up on the
// read side as EOF or error.
void flush(Conn& c) {
  bufferevent* bev = c.bev.get();
  evbuffer* out = bufferevent_get_output(bev);
  if ((bufferevent_get_enabled(bev) & EV_WRITE) || evbuffer_get_length(out) == 0) return;
  if (g.opt.tls) {  // the TLS bufferevent encrypts and writes on its own
    bufferevent_enable(bev, EV_WRITE);
    return;
  }
  evbuffer_unfreeze(out, 1);  // a bufferevent freezes its output's front between writes
  const int written = evbuffer_write(out, bufferevent_getfd(bev));
  evbuffer_freeze(out, 1);
  if (written < 0 && errno != EAGAIN) return;
  if (evbuffer_get_length(out) > 0) bufferevent_enable(bev, EV_WRITE);
}

// The output has drained (low write watermark 0): flush() writes directly again.
void write_cb(bufferevent* bev, void*) {
  bufferevent_disable(bev, EV_WRITE);
}

void send_frame(Conn& c, uint8_t opcode, const uint8_t* data, std::size_t len) {
  evbuffer* out = bufferevent_get_output(c.bev.get());
  uint8_t h[ws::kMaxHeaderSize], mask[4];
  evbuffer_add(out, h, frame_header(h, opcode, len, mask));
  if (len == 0) return flush(c);
  evbuffer_iovec v;  // copy and mask straight into the output buffer
  evbuffer_reserve_space(out, static_cast<ev_ssize_t>(len), &v, 1);
  std::memcpy(v.iov_base, data, len);
  ws::apply_mask(static_cast<uint8_t*>(v.iov_base), len, mask, 0);
  v.iov_len = len;
  evbuffer_commit_space(out, &v, 1);
  flush(c);
}

// One benchmark message, stamped with the time it was (or was scheduled to be) sent.
void send_message(Conn& c, uint64_t stamp) {
  if (c.state != ConnState::Open || c.in_flight == c.ring_cap) {
    ++g.errors;  // open loop: connection gone or too far behind its schedule
    return;
  }
  c.sent_at[(c.ring_head + c.in_flight++) % c.ring_cap] = stamp;
  send_frame(c, static_cast<uint8_t>(ws::Opcode::Binary), g.payload.data(), g.payload.size());
}

void send_close(Conn& c) {
  uint8_t frame[ws::kMaxHeaderSize + ws::kMaxControlPayload];
  const auto key = static_cast<uint32_t>(g.rng.next());
  uint8_t mask[4];
  std::memcpy(mask, &key, 4);
  const std::size_t n = ws::build_close_frame(frame, ws::close_code::kNormal, "", mask);
  bufferevent_write(c.bev.get(), frame, n);
  flush(c);
  c.state = ConnState::Closing;
}

void on_message(Conn& c) {
  const uint64_t now = now_ns();
  if (c.in_flight == 0) {
    ++g.errors;  // an echo nobody asked for
    return;
  }
  const uint64_t sent = c.sent_at[c.ring_head];
  c.ring_head = (c.ring_head + 1) % c.ring_cap;
  --c.in_flight;
  if (c.message_bytes != g.opt.size) ++g.errors;
  if (g.phase == Phase::Measuring) {
    ++g.messages;
    g.lat.add(now - sent, g.rng);
  }
  const bool sending = g.phase == Phase::Warmup || g.phase == Phase::Measuring;
  if (sending && g.opt.rate == 0) send_message(c, now);  // closed loop: next one
}

// Handles one control frame already whole in `in` (RFC 6455 5.5).
void on_control(Conn& c, evbuffer* in, const ws::FrameHeader& h) {
  uint8_t buf[ws::kMaxHeaderSize + ws::kMaxControlPayload];
  evbuffer_remove(in, buf, h.header_length + h.payload_length);
  const uint8_t* body = buf + h.header_length;
  const auto len = static_cast<std::size_t>(h.payload_length);
  if (h.opcode == static_cast<uint8_t>(ws::Opcode::Ping)) {
    send_frame(c, static_cast<uint8_t>(ws::Opcode::Pong), body, len);  // 5.5.3
  } else if (h.opcode == static_cast<uint8_t>(ws::Opcode::Close)) {
    // 7.1.1: after the closing handshake the client waits for the server's TCP close.
    if (c.state == ConnState::Open) {
      ++g.errors;  // the server closed on us mid-run
      send_close(c);
    }
    c.close_received = true;
  }
}

// Reads server frames: echoes (counted per message), Ping, Close.
void read_frames(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev.get());
  while (c.bev && evbuffer_get_length(in) > 0) {
    if (c.close_received) {
      evbuffer_drain(in, evbuffer_get_length(in));  // RFC 6455 5.5.1: nothing after Close
      return;
    }
    if (c.payload_left > 0) {
      const auto n = std::min<uint64_t>(c.payload_left, evbuffer_get_length(in));
      evbuffer_drain(in, static_cast<std::size_t>(n));
      c.payload_left -= n;
      if (c.payload_left == 0 && c.frame_fin) {
        on_message(c);
        c.message_bytes = 0;
      }
      continue;
    }
    uint8_t hb[ws::kMaxHeaderSize];
    const ev_ssize_t got = evbuffer_copyout(in, hb, sizeof hb);
    ws::FrameHeader h;
    const ws::HeaderStatus st = ws::parse_frame_header(hb, static_cast<std::size_t>(got), h);
    if (st == ws::HeaderStatus::NeedMore) return;
    if (st == ws::HeaderStatus::Malformed || c.validator.check(h) != 0) {
      std::fprintf(stderr, "connection %zu: protocol error from server: %s\n", c.index,
                   st == ws::HeaderStatus::Malformed
                       ? "malformed header"
                       : std::string(c.validator.last_error()).c_str());
      ++g.errors;
      return mark_closed(c);
    }
    if (h.is_control()) {
      if (evbuffer_get_length(in) < h.header_length + h.payload_length) return;
      on_control(c, in, h);
      continue;
    }
    evbuffer_drain(in, h.header_length);
    c.payload_left = h.payload_length;
    c.frame_fin = h.fin;
    c.message_bytes += h.payload_length;
    if (c.payload_left == 0 && h.fin) {
      on_message(c);
      c.message_bytes = 0;
    }
  }
}

void start_run();

// RFC 6455 4.1 / 4.2.2: the server must answer 101 with the right Sec-WebSocket-Accept.
void read_handshake(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev.get());
  const http1::Limits limits;
  const std::size_t n = std::min(evbuffer_get_length(in), limits.max_head_bytes + 1);
  const auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(n)));
  http1::ResponseHead resp;
  const http1::ParseResult r = http1::parse_response_head({p, n}, limits, resp);
  if (r.state == http1::ParseState::Incomplete) return;
  if (r.state == http1::ParseState::Error) return handshake_failed(c, r.error_reason);
  const http1::Header* upgrade = resp.find("Upgrade");
  const http1::Header* connection = resp.find("Connection");
  const http1::Header* accept = resp.find("Sec-WebSocket-Accept");
  if (resp.status != 101) return handshake_failed(c, "status " + std::to_string(resp.status));
  if (!upgrade || !http1::iequals(upgrade->value, "websocket") || !connection ||
      !http1::header_has_token(connection->value, "upgrade")) {
    return handshake_failed(c, "missing Upgrade: websocket / Connection: Upgrade");
  }
  if (!accept || accept->value != ws::compute_accept(c.key)) {
    return handshake_failed(c, "wrong Sec-WebSocket-Accept");
  }
  evbuffer_drain(in, r.head_length);
  c.state = ConnState::Open;
  if (++g.handshakes == g.conns.size()) start_run();
}

void read_cb(bufferevent*, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (c.state == ConnState::Handshaking) read_handshake(c);
  if (c.state == ConnState::Open || c.state == ConnState::Closing) read_frames(c);
}

void event_cb(bufferevent*, short events, void* arg) {
  Conn& c = *static_cast<Conn*>(arg);
  if (events & BEV_EVENT_CONNECTED) {
    const int one = 1;
    setsockopt(bufferevent_getfd(c.bev.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.key = ws::generate_key();
    const std::string req = "GET " + g.opt.path + " HTTP/1.1\r\nHost: " + g.opt.authority +
                            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: " +
                            c.key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    bufferevent_write(c.bev.get(), req.data(), req.size());
    flush(c);
    c.state = ConnState::Handshaking;
    return;
  }
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    if (c.state == ConnState::Connecting || c.state == ConnState::Handshaking) {
      return handshake_failed(
          c, (events & BEV_EVENT_ERROR)
                 ? std::string(evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()))
                 : "connection closed by server");
    }
    if (c.state == ConnState::Open) ++g.errors;  // lost mid-run
    mark_closed(c);
  }
}

void open_loop_tick(evutil_socket_t, short, void*) {
  // Send every message whose scheduled time has come, spread round-robin.
  const uint64_t now = now_ns();
  const double per_ns = g.opt.rate / 1e9;
  const auto due = static_cast<uint64_t>(static_cast<double>(now - g.schedule_start) * per_ns);
  for (; g.scheduled < due; ++g.scheduled) {
    Conn& c = *g.conns[g.scheduled % g.conns.size()];
    const auto at =
        g.schedule_start + static_cast<uint64_t>(static_cast<double>(g.scheduled) / per_ns);
    send_message(c, at);
  }
}

void finish_run() {
  g.phase = Phase::Closing;
  g.measure_end = now_ns();
  g.tick.reset();
  for (auto& c : g.conns) {
    if (c->state == ConnState::Open) send_close(*c);
  }
  if (g.closed == g.conns.size()) on_all_closed();
}

// All handshakes done: warm up, then measure for --duration.
void start_run() {
  auto start_measuring = [] {
    g.phase = Phase::Measuring;
    g.measure_start = now_ns();
  };
  const auto run_ms = static_cast<long long>((g.opt.warmup_s + g.opt.duration_s) * 1000);
  g.run_done = std::make_unique<Timer>(g.base.get(), finish_run);
  g.run_done->arm_ms(run_ms);
  g.close_deadline = std::make_unique<Timer>(g.base.get(), on_all_closed);
  g.close_deadline->arm_ms(run_ms + kCloseTimeoutMs);
  if (g.opt.warmup_s > 0) {
    g.phase = Phase::Warmup;
    g.warmup_done = std::make_unique<Timer>(g.base.get(), start_measuring);
    g.warmup_done->arm_ms(static_cast<long long>(g.opt.warmup_s * 1000));
  } else {
    start_measuring();
  }
  const uint64_t now = now_ns();
  if (g.opt.rate > 0) {
    g.schedule_start = now;
    g.tick.reset(event_new(g.base.get(), -1, EV_PERSIST, open_loop_tick, nullptr));
    const timeval tv{0, kTickUs};
    event_add(g.tick.get(), &tv);
  } else {
    for (auto& c : g.conns) send_message(*c, now);
  }
}

// ws://127.0.0.1[:port][/path] or ws://[::1][:port][/path]; loopback only by design.
bool parse_url(const std::string& url, Options& o) {
  o.tls = url.rfind("wss://", 0) == 0;
  if (!o.tls && url.rfind("ws://", 0) != 0) return false;
  const std::string rest = url.substr(o.tls ? 6 : 5);
  const std::size_t slash = rest.find('/');
  o.authority = rest.substr(0, slash);
  o.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string host, port = o.tls ? "443" : "80";
  for (const char* h : {"127.0.0.1", "[::1]"}) {
    if (o.authority.rfind(h, 0) == 0) host = h;
  }
  if (host.empty()) return false;
  if (o.authority.size() > host.size()) {
    if (o.authority[host.size()] != ':') return false;
    port = o.authority.substr(host.size() + 1);
  }
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) return false;
  o.addr_len = sizeof o.addr;
  const std::string sa = host + ":" + std::to_string(p);
  return evutil_parse_sockaddr_port(sa.c_str(), reinterpret_cast<sockaddr*>(&o.addr),
                                    &o.addr_len) == 0;
}

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s, &end);
  return errno == 0 && end != s && *end == '\0' && out >= 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: wsgate-bench-client --url ws[s]://127.0.0.1:8080/echo [--connections 100]\n"
               "         [--size 64] [--duration 10] [--warmup 2] [--rate MSGS_PER_S]\n"
               "  host must be 127.0.0.1 or [::1]; --rate switches to open loop\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options& o = g.opt;
  bool have_url = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return usage();
    const char* val = argv[++i];
    double d = 0;
    if (arg == "--url") {
      if (!parse_url(val, o)) return usage();
      have_url = true;
    } else if (!parse_number(val, d)) {
      return usage();
    } else if (arg == "--connections" && d >= 1 && d <= 100000) {
      o.connections = static_cast<int>(d);
    } else if (arg == "--size" && d <= (64 << 20)) {
      o.size = static_cast<std::size_t>(d);
    } else if (arg == "--duration" && d > 0) {
      o.duration_s = d;
    } else if (arg == "--warmup") {
      o.warmup_s = d;
    } else if (arg == "--rate") {
      o.rate = d;
    } else {
      return usage();
    }
  }
  if (!have_url) return usage();
  std::signal(SIGPIPE, SIG_IGN);
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  // Everything per-message is preallocated here.
  const auto n = static_cast<std::size_t>(o.connections);
  const std::size_t ring_cap = o.rate > 0 ? kMaxInFlight : 1;
  g.ring_storage.assign(n * ring_cap, 0);
  g.payload.resize(o.size);
  for (auto& b : g.payload) b = static_cast<uint8_t>(g.rng.next());
  g.lat.samples.reserve(kMaxSamples);

  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);  // open-loop schedule
  g.base.reset(event_base_new_with_config(cfg));
  event_config_free(cfg);

  SSL_CTX* ssl_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, nullptr);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<Conn>();
    c->index = i;
    c->ring_cap = ring_cap;
    c->sent_at = g.ring_storage.data() + i * ring_cap;
    if (o.tls) {
      c->bev.reset(bufferevent_openssl_socket_new(
          g.base.get(), -1, SSL_new(ssl_ctx), BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE));
    } else {
      c->bev.reset(bufferevent_socket_new(g.base.get(), -1, BEV_OPT_CLOSE_ON_FREE));
    }
    bufferevent_setcb(c->bev.get(), read_cb, write_cb, event_cb, c.get());
    bufferevent_disable(c->bev.get(), EV_WRITE);  // on by default; only while output is stuck
    bufferevent_enable(c->bev.get(), EV_READ);
    if (bufferevent_socket_connect(c->bev.get(), reinterpret_cast<sockaddr*>(&o.addr),
                                   o.addr_len) != 0) {
      std::fprintf(stderr, "connection %zu: connect failed\n", i);
      return 1;
    }
    g.conns.push_back(std::move(c));
  }
  Timer handshake_deadline(g.base.get(), [] {
    if (g.phase != Phase::Connecting) return;
    std::fprintf(stderr, "handshakes: %zu of %zu done after %lld ms\n", g.handshakes,
                 g.conns.size(), kHandshakeTimeoutMs);
    g.handshake_failed = true;
    event_base_loopbreak(g.base.get());
  });
  handshake_deadline.arm_ms(kHandshakeTimeoutMs);

  event_base_dispatch(g.base.get());
  if (g.handshake_failed) return 1;

  const double secs = static_cast<double>(g.measure_end - g.measure_start) / 1e9;
  std::printf(
      "{\"connections\":%d,\"size\":%zu,\"duration_s\":%.3f,\"messages\":%llu,"
      "\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"errors\":%llu}\n",
      o.connections, o.size, secs, static_cast<unsigned long long>(g.messages),
      secs > 0 ? static_cast<double>(g.messages) / secs : 0.0, g.lat.percentile_us(0.50),
      g.lat.percentile_us(0.99), g.lat.percentile_us(0.999),
      static_cast<unsigned long long>(g.errors));
  return 0;
}
