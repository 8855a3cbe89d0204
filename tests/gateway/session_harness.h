// A real Worker on the test's own thread, for session-level tests: its listening socket
// on a kernel-chosen port, an upstream listening socket the test plays, and plain
// non-blocking sockets for clients. The test runs the worker's event loop in short
// turns until a condition holds or a deadline passes (no fixed sleeps).
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config_loader.h"
#include "gateway/client_limits.h"
#include "gateway/worker.h"
#include "metrics/access_log.h"
#include "proxy/codec/websocket_key.h"
#include "proxy/upstream/upstream_pool.h"
#include "tls/tls_snapshot.h"

namespace wsgate::test {

using namespace std::chrono_literals;

inline uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

inline void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// One end of a TCP connection the test plays (a client, or the upstream's accepted side).
struct Peer {
  int fd = -1;
  std::string in;    // everything read so far
  bool eof = false;  // the other side closed (or reset)

  Peer() = default;
  explicit Peer(int f) : fd(f) { set_nonblocking(fd); }
  Peer(Peer&& o) noexcept : fd(std::exchange(o.fd, -1)), in(std::move(o.in)), eof(o.eof) {}
  Peer& operator=(Peer&& o) noexcept {
    std::swap(fd, o.fd);
    in = std::move(o.in);
    eof = o.eof;
    return *this;
  }
  ~Peer() {
    if (fd >= 0) ::close(fd);
  }

  // Reads what is there without blocking.
  void pump() {
    if (fd < 0 || eof) return;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) eof = true;
      return;
    }
  }
  // Writes all of `bytes` (small writes: the socket buffer takes them).
  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        return;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Writes what the socket takes now; returns how much.
  std::size_t write_some(std::string_view bytes) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  bool head_complete() const { return in.find("\r\n\r\n") != std::string::npos; }
  std::string head() const { return in.substr(0, in.find("\r\n\r\n") + 4); }
  int status() const {
    if (in.size() < 12 || in.compare(0, 5, "HTTP/") != 0) return 0;
    return std::stoi(in.substr(9, 3));
  }
  std::string body() const {
    const auto p = in.find("\r\n\r\n");
    return p == std::string::npos ? std::string() : in.substr(p + 4);
  }
};

inline std::string header_value(const std::string& head, std::string_view name) {
  std::string lower_head;
  for (char c : head) lower_head.push_back(static_cast<char>(std::tolower(c)));
  std::string key = "\r\n";
  for (char c : name) key.push_back(static_cast<char>(std::tolower(c)));
  key += ":";
  const auto p = lower_head.find(key);
  if (p == std::string::npos) return {};
  auto start = p + key.size();
  while (start < head.size() && head[start] == ' ') ++start;
  return head.substr(start, head.find("\r\n", start) - start);
}

// The upstream server the test plays: a listening socket on 127.0.0.1.
struct UpstreamListener {
  int fd = -1;
  uint16_t port = 0;
  UpstreamListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd, 128) == 0);
    port = local_port(fd);
  }
  ~UpstreamListener() {
    if (fd >= 0) ::close(fd);
  }
  // A connection the gateway opened, if one is waiting.
  bool accept(Peer& peer) {
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return false;
    peer = Peer(c);
    return true;
  }
};

// The 101 a correct upstream answers to `request` (its Sec-WebSocket-Key).
inline std::string upstream_101(const std::string& request, std::string_view extra = {}) {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         ws::compute_accept(header_value(request, "Sec-WebSocket-Key")) + "\r\n" +
         std::string(extra) + "\r\n";
}

// A Worker with one plain listener (h2c on) and one upstream "app" at `upstream_port`,
// routed for /ws. `listener_extra` and `tail` are more TOML for the listener and the file.
struct Gateway {
  conf::ConfigPtr config;
  tls::TlsSnapshotPtr tls;
  std::shared_ptr<metrics::AccessLog> access_log = std::make_shared<metrics::AccessLog>();
  std::shared_ptr<proxy::UpstreamPools> pools;
  std::unique_ptr<gateway::Worker> worker;
  uint16_t port = 0;

  explicit Gateway(uint16_t upstream_port, std::string_view listener_extra = {},
                   std::string_view tail = {}) {
    const std::string text =
        "workers = 1\naccess_log = \"\"\n"
        "[[listener]]\naddress = \"127.0.0.1:1\"\nh2c = true\n" +
        std::string(listener_extra) +
        "\n[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:" + std::to_string(upstream_port) +
        "\"]\nretries = 0\neject_after_failures = 0\n"
        "[[route]]\npath = \"/ws\"\nupstream = \"app\"\n" +
        std::string(tail);
    conf::LoadResult loaded = conf::load_config_text(text, "session-test.toml");
    if (!loaded.ok()) FAIL(loaded.error->to_string());
    config = loaded.config;
    std::string error;
    tls = tls::build_tls_snapshot(*config, error);
    REQUIRE(tls != nullptr);
    pools = std::make_shared<proxy::UpstreamPools>(*config);
    // The listener's address in the file is a placeholder: the socket is the test's own,
    // on a port the kernel chooses.
    UpstreamListener socket;
    const int fd = std::exchange(socket.fd, -1);
    port = socket.port;
    worker = std::make_unique<gateway::Worker>(
        0, config, tls, std::vector<gateway::ListenSocket>{{fd, &config->listeners[0], 0}},
        access_log, pools);
    if (config->limits.any())
      worker->set_client_limits(std::make_shared<gateway::ClientLimits>(config->limits));
  }

  // `rcvbuf` > 0: a small receive buffer (set before connecting, so the kernel keeps it),
  // for a client that stops reading.
  Peer connect(int rcvbuf = 0) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return Peer(fd);
  }

  // One short turn of the worker's loop.
  void turn() const {
    const timeval tick{0, 2000};
    event_base_loopexit(worker->base(), &tick);
    event_base_loop(worker->base(), EVLOOP_ONCE);
  }
  // Runs the loop until `done` (checked between turns) or `limit` passes; says which.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = 5000ms) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      turn();
    }
    return true;
  }
  // Runs the loop for `d` whatever happens (to show that nothing does).
  void run_for(std::chrono::milliseconds d) const {
    run_until([] { return false; }, d);
  }
};

}  // namespace wsgate::test
