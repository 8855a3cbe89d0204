#include "proxy/connect/connect_dialer.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>

#include "conf/address.h"

namespace wsgate::proxy {
namespace {

std::string address_text(const connect::Address& a, uint16_t port) {
  return conf::format_host_port(connect::to_string(a), port);
}

socklen_t sockaddr_length(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

ConnectDialer::ConnectDialer(event_base* base, evdns_base* dns, const conf::Connect& settings,
                             connect::Authority target, Done done)
    : base_(base),
      dns_(dns),
      settings_(settings),
      target_(std::move(target)),
      done_(std::move(done)),
      timer_(base, [this] { on_timeout(); }) {}

ConnectDialer::~ConnectDialer() {
  cancel();
}

void ConnectDialer::start() {
  const std::string where = target_.host + ":" + std::to_string(target_.port);
  if (target_.is_ip) {
    const auto a = connect::parse_address(target_.host);
    sockaddr_storage ss{};
    if (a->family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      std::memcpy(&in->sin_addr, a->bytes.data(), 4);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      std::memcpy(&in6->sin6_addr, a->bytes.data(), 16);
    }
    use_addresses({ss});
    return;
  }
  // Refuse before asking DNS when no rule could allow the name at that port.
  if (connect::Decision d = connect::check_name(settings_.allow, target_.host, target_.port);
      !d.allowed) {
    fail(403, std::move(d.reason));
    return;
  }
  state_ = State::Resolving;
  timer_.arm_ms(settings_.resolve_timeout.count());
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  // The answer may come before this returns (a name from /etc/hosts).
  lookup_.start(dns_, target_.host.c_str(), hints,
                [this](int err, const evutil_addrinfo* res) { on_resolved(err, res); });
}

void ConnectDialer::on_resolved(int err, const evutil_addrinfo* res) {
  if (state_ != State::Resolving) return;
  timer_.cancel();
  if (err != 0) {
    fail(502, "cannot resolve " + target_.host + ": " + evutil_gai_strerror(err));
    return;
  }
  std::vector<sockaddr_storage> candidates;
  for (const evutil_addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    candidates.push_back(ss);
  }
  use_addresses(candidates);
}

void ConnectDialer::use_addresses(const std::vector<sockaddr_storage>& candidates) {
  // Only addresses the allow-list accepts are tried; the first refusal says why when
  // none is left.
  std::string denied;
  const std::string_view name = target_.is_ip ? std::string_view() : target_.host;
  for (const sockaddr_storage& ss : candidates) {
    const auto a = connect::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
    if (!a) continue;
    connect::Decision d = connect::check_address(settings_.allow, name, *a, target_.port);
    if (!d.allowed) {
      if (denied.empty()) denied = std::move(d.reason);
      continue;
    }
    sockaddr_storage port_set = ss;
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&port_set)->sin_port = htons(target_.port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&port_set)->sin6_port = htons(target_.port);
    }
    addresses_.push_back(port_set);
  }
  if (addresses_.empty()) {
    fail(403, denied.empty() ? "no address for " + target_.host : denied);
    return;
  }
  try_next();
}

void ConnectDialer::try_next() {
  bev_.reset();
  if (next_ == addresses_.size()) {
    if (addresses_.size() > 1)
      last_reason_ += " (" + std::to_string(addresses_.size()) + " addresses tried)";
    fail(last_status_, std::move(last_reason_));
    return;
  }
  const sockaddr_storage& ss = addresses_[next_++];
  current_ =
      address_text(*connect::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)), target_.port);
  state_ = State::Connecting;
  bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  bufferevent_setcb(bev_.get(), nullptr, nullptr, &ConnectDialer::on_event, this);
  timer_.arm_ms(settings_.connect_timeout.count());
  if (bufferevent_socket_connect(bev_.get(), reinterpret_cast<const sockaddr*>(&ss),
                                 static_cast<int>(sockaddr_length(ss))) != 0) {
    last_status_ = 502;
    last_reason_ = "cannot connect to " + current_ + ": " +
                   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
    try_next();
  }
}

void ConnectDialer::on_event(bufferevent* /*bev*/, short what, void* self) {
  auto* d = static_cast<ConnectDialer*>(self);
  if (d->state_ != State::Connecting) return;
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    d->state_ = State::Done;
    d->timer_.cancel();
    const int one = 1;
    setsockopt(bufferevent_getfd(d->bev_.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bufferevent_setcb(d->bev_.get(), nullptr, nullptr, nullptr, nullptr);
    DialResult result;
    result.connection = std::move(d->bev_);
    result.address = d->current_;
    d->done_(std::move(result));
    return;
  }
  if ((what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) == 0) return;
  // Refused or unreachable: the next allowed address may answer.
  d->last_status_ = 502;
  d->last_reason_ = "cannot connect to " + d->current_ + ": " +
                    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
  d->try_next();
}

void ConnectDialer::on_timeout() {
  if (state_ == State::Resolving) {
    lookup_.cancel();
    fail(504, "timed out resolving " + target_.host + " (resolve_timeout " +
                  std::to_string(settings_.resolve_timeout.count()) + " ms)");
  } else if (state_ == State::Connecting) {
    last_status_ = 504;
    last_reason_ = "timed out connecting to " + current_ + " (connect_timeout " +
                   std::to_string(settings_.connect_timeout.count()) + " ms)";
    try_next();
  }
}

void ConnectDialer::fail(int status, std::string reason) {
  state_ = State::Done;
  timer_.cancel();
  bev_.reset();
  DialResult result;
  result.refusal = {status, std::move(reason), {}};
  result.address = current_.empty() ? "-" : current_;
  done_(std::move(result));
}

void ConnectDialer::cancel() {
  if (state_ == State::Done && !lookup_.in_flight() && !bev_) return;
  state_ = State::Done;
  timer_.cancel();
  bev_.reset();
  lookup_.cancel();
}

}  // namespace wsgate::proxy
