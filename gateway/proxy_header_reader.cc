#include "gateway/proxy_header_reader.h"

#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "conf/address.h"
#include "metrics/log.h"
#include "proxy/connect/connect_acl.h"

namespace wsgate::gateway {
namespace {

using Clock = std::chrono::steady_clock;

// The header's client as a socket address (what a directly connected client has).
sockaddr_storage to_sockaddr(const proxy_protocol::Endpoint& e) {
  sockaddr_storage ss{};
  if (e.family == proxy_protocol::Endpoint::Family::Inet) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(e.port);
    std::memcpy(&sin->sin_addr, e.address.data(), 4);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(e.port);
    std::memcpy(&sin6->sin6_addr, e.address.data(), 16);
  }
  return ss;
}

std::string describe_endpoint(const proxy_protocol::Endpoint& e) {
  const sockaddr_storage ss = to_sockaddr(e);
  return conf::describe(reinterpret_cast<const sockaddr*>(&ss)).ip_port;
}

bool allowed(const conf::Listener& listener, const sockaddr* peer) {
  const auto address = proxy::connect::from_sockaddr(peer);
  if (!address) return false;
  for (const conf::IpNetwork& net : listener.proxy_protocol_from)
    if (proxy::connect::network_contains(net, *address)) return true;
  return false;
}

}  // namespace

// One socket whose header is being read. Its event is one-shot (read or timeout) and
// re-armed with the time left, so a peer that trickles bytes cannot stretch the deadline.
class ProxyHeaderReaders::Pending {
 public:
  enum class Step { Wait, Done, Fail };

  Pending(ProxyHeaderReaders& owner, evutil_socket_t fd, const sockaddr* peer, AcceptedOn on)
      : owner_(owner),
        fd_(fd),
        peer_(conf::describe(peer).ip_port),
        on_(std::move(on)),
        deadline_(Clock::now() + on_.listener->handshake_timeout) {
    event_.reset(event_new(owner.base_, fd, EV_READ, &ProxyHeaderReaders::on_event, this));
  }
  ~Pending() {
    if (fd_ >= 0) ::close(fd_);
  }
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;

  // Waits for bytes until the deadline; false when it has passed.
  bool arm() {
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) return false;
    const timeval tv{static_cast<time_t>(left.count() / 1000000),
                     static_cast<suseconds_t>(left.count() % 1000000)};
    event_add(event_.get(), &tv);
    return true;
  }

  // Takes what the socket has of the header. Bytes are first peeked: those of a header
  // still incomplete are all the header's (proxy_protocol::parse's NeedMore), so they
  // are taken; once complete, exactly the header's remaining bytes are taken, and the
  // client's first bytes stay in the socket for TLS or the HTTP parser.
  Step step(short what) {
    if ((what & EV_TIMEOUT) != 0) return timed_out();
    char buf[proxy_protocol::kMaxLength];
    const std::size_t room = proxy_protocol::kMaxLength - got_.size();
    const ssize_t n = ::recv(fd_, buf, room, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Step::Wait;
    if (n <= 0) return fail("closed", "closed before a complete PROXY header");
    const std::string seen = got_ + std::string(buf, static_cast<std::size_t>(n));
    result_ = proxy_protocol::parse(seen);
    switch (result_.state) {
      case proxy_protocol::State::NeedMore:
        if (!take(static_cast<std::size_t>(n))) return fail("closed", "read failed");
        return Step::Wait;
      case proxy_protocol::State::Error:
        return fail("malformed", result_.error);
      case proxy_protocol::State::Done:
        if (!take(result_.length - got_.size())) return fail("closed", "read failed");
        return Step::Done;
    }
    return Step::Wait;
  }

  Step timed_out() { return fail("timeout", "no complete PROXY header in time"); }

  // The socket goes on to the connection: the destructor no longer closes it.
  evutil_socket_t release() {
    const evutil_socket_t fd = fd_;
    fd_ = -1;
    return fd;
  }

  ProxyHeaderReaders& owner_;
  evutil_socket_t fd_;
  std::string peer_;  // "ip:port" of the TCP peer (the balancer)
  AcceptedOn on_;
  Clock::time_point deadline_;
  EventPtr event_;
  std::string got_;  // bytes of the header taken so far
  proxy_protocol::Result result_;
  std::string fail_label_;
  std::string fail_why_;

 private:
  bool take(std::size_t n) {
    char buf[proxy_protocol::kMaxLength];
    const ssize_t got = ::recv(fd_, buf, n, 0);
    if (got != static_cast<ssize_t>(n)) return false;
    got_.append(buf, n);
    return true;
  }
  Step fail(std::string label, std::string why) {
    fail_label_ = std::move(label);
    fail_why_ = std::move(why);
    return Step::Fail;
  }
};

ProxyHeaderReaders::ProxyHeaderReaders(event_base* base, metrics::WorkerMetrics& metrics,
                                       int worker, Ready ready)
    : base_(base),
      metrics_(metrics),
      worker_(worker),
      ready_(std::move(ready)),
      log_flush_(base, [this] { report_not_logged(log_limiter_.take_suppressed()); }) {}

ProxyHeaderReaders::~ProxyHeaderReaders() {
  close_all();
}

void ProxyHeaderReaders::start(evutil_socket_t fd, const sockaddr* peer, AcceptedOn on) {
  if (!allowed(*on.listener, peer)) {
    ::close(fd);
    reject("not_allowed", conf::describe(peer).ip_port,
           "not in proxy_protocol_from of listener " + on.listener->name);
    return;
  }
  auto pending = std::make_unique<Pending>(*this, fd, peer, std::move(on));
  Pending* raw = pending.get();
  pending_.emplace(raw, std::move(pending));
  raw->arm();
}

void ProxyHeaderReaders::on_event(evutil_socket_t /*fd*/, short what, void* arg) {
  auto* p = static_cast<Pending*>(arg);
  ProxyHeaderReaders& self = p->owner_;
  Pending::Step step = p->step(what);
  if (step == Pending::Step::Wait) {
    if (p->arm()) return;
    step = p->timed_out();
  }
  // Done or failed: the pending entry goes now (its one-shot event is not pending, so
  // freeing it here, in its own callback, is allowed).
  auto node = self.pending_.extract(p);
  if (node.empty()) return;  // not ours (cannot happen: every event's Pending is listed)
  std::unique_ptr<Pending> owned = std::move(node.mapped());
  if (step == Pending::Step::Fail) {
    const std::string label = owned->fail_label_;
    const std::string why = owned->fail_why_;
    const std::string peer = owned->peer_;
    owned.reset();  // closes the socket
    self.reject(label, peer, why);
    return;
  }
  const proxy_protocol::Header& header = owned->result_.header;
  self.metrics_.proxy_header(proxy_protocol::to_string(header.version));
  if (log::enabled(log::Level::Debug)) {
    log::debug("PROXY protocol " + std::string(proxy_protocol::to_string(header.version)) +
               " header from " + owned->peer_ + ": " +
               (header.has_addresses ? "client " + describe_endpoint(header.source)
                                     : std::string("no addresses (LOCAL/UNKNOWN)")));
  }
  ProxiedConnection proxied{owned->peer_, header};
  const evutil_socket_t fd = owned->release();
  sockaddr_storage client{};
  if (header.has_addresses) {
    client = to_sockaddr(header.source);
  } else {
    // LOCAL / UNKNOWN: the balancer speaks for itself; its own address stands.
    socklen_t len = sizeof(client);
    getpeername(fd, reinterpret_cast<sockaddr*>(&client), &len);
  }
  AcceptedOn on = std::move(owned->on_);
  owned.reset();
  self.ready_(fd, reinterpret_cast<const sockaddr*>(&client), std::move(on), std::move(proxied));
}

void ProxyHeaderReaders::close_all() {
  pending_.clear();
}

void ProxyHeaderReaders::reject(const std::string& reason_label, const std::string& peer,
                                const std::string& why) {
  metrics_.proxy_rejection(reason_label);
  // A flood of bad headers must not flood the log: the TLS failures' bound.
  const tls::FailureLogLimiter::Verdict v = log_limiter_.on_failure(time(nullptr));
  report_not_logged(v.report_count);
  if (v.log_this) {
    log::warn("PROXY protocol: connection from " + peer + " closed: " + why);
    return;
  }
  if (!log_flush_.pending()) log_flush_.arm_ms(1000);
}

void ProxyHeaderReaders::report_not_logged(uint64_t count) {
  if (count == 0) return;
  log::warn("worker " + std::to_string(worker_) + ": " + std::to_string(count) +
            " more PROXY protocol rejection(s) not logged");
}

}  // namespace wsgate::gateway
