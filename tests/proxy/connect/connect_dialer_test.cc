// The CONNECT dialer (proxy/connect/connect_dialer.cc) on a real event_base with a scripted DNS
// server on 127.0.0.1 (UDP, answers A queries for *.test with 127.0.0.1 or 93.184.216.34,
// NXDOMAIN for nx.test, never answers for slow.test): the allow-list runs on the
// resolved addresses (no DNS-rebinding bypass), and each failure has its status.
#include "proxy/connect/connect_dialer.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <event2/dns.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <optional>
#include <string>

#include "conf/config_connect.h"

using namespace wsgate;

namespace {

// A UDP DNS responder driven by the test's event_base.
class FakeDns {
 public:
  explicit FakeDns(event_base* base) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    socklen_t len = sizeof sin;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
    evutil_make_socket_nonblocking(fd_);
    ev_.reset(event_new(base, fd_, EV_READ | EV_PERSIST, &FakeDns::on_query, this));
    event_add(ev_.get(), nullptr);
  }
  ~FakeDns() {
    ev_.reset();
    close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  static void on_query(evutil_socket_t fd, short, void* self) {
    (void)self;
    unsigned char q[512];
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = recvfrom(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 12) return;
    // The question's name, labels joined with dots.
    std::string name;
    std::size_t pos = 12;
    while (pos < static_cast<std::size_t>(n) && q[pos] != 0) {
      const std::size_t l = q[pos];
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + pos + 1), l);
      pos += l + 1;
    }
    // evdns randomizes the case of its queries (the "0x20" defence): compare lowercase.
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::size_t question_end = pos + 5;  // zero label, type, class
    if (question_end > static_cast<std::size_t>(n)) return;
    const uint16_t type = static_cast<uint16_t>((q[pos + 1] << 8) | q[pos + 2]);
    if (name == "slow.test") return;  // never answered: resolve_timeout
    std::string r(reinterpret_cast<const char*>(q), question_end);
    r[2] = static_cast<char>(0x81);                             // QR, RD
    r[3] = static_cast<char>(name == "nx.test" ? 0x83 : 0x80);  // RA, NXDOMAIN or NOERROR
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
    if (type == 1 && name != "nx.test") {  // one A record
      r[7] = 1;
      const unsigned char ip[4] = {static_cast<unsigned char>(name == "public.test" ? 93 : 127),
                                   static_cast<unsigned char>(name == "public.test" ? 184 : 0),
                                   static_cast<unsigned char>(name == "public.test" ? 216 : 0),
                                   static_cast<unsigned char>(name == "public.test" ? 34 : 1)};
      const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
      r.append(reinterpret_cast<const char*>(rr), sizeof rr);
      r.append(reinterpret_cast<const char*>(ip), 4);
    }
    sendto(fd, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  EventPtr ev_;
};

struct Fixture {
  EventBasePtr base{event_base_new()};
  FakeDns dns{base.get()};
  DnsBasePtr resolver{evdns_base_new(base.get(), 0)};
  conf::Connect settings;
  int listen_fd = -1;
  uint16_t listen_port = 0;

  Fixture() {
    evdns_base_nameserver_ip_add(resolver.get(), dns.address().c_str());
    evdns_base_set_option(resolver.get(), "timeout:", "5");
    settings.resolve_timeout = std::chrono::milliseconds(300);
    settings.connect_timeout = std::chrono::milliseconds(500);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    listen(listen_fd, 4);
    socklen_t len = sizeof sin;
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&sin), &len);
    listen_port = ntohs(sin.sin_port);
  }
  ~Fixture() { close(listen_fd); }

  void allow(std::string host, std::string cidr, uint16_t port) {
    conf::ConnectRule r;
    r.host = std::move(host);
    if (!cidr.empty()) r.network = conf::detail::parse_cidr(cidr);
    r.ports = {{port, port}};
    settings.allow.push_back(std::move(r));
  }

  proxy::DialResult dial(const std::string& target) {
    std::optional<proxy::DialResult> result;
    const auto authority = proxy::connect::parse_authority(target).authority;
    REQUIRE(authority.has_value());
    proxy::ConnectDialer dialer(base.get(), resolver.get(), settings, *authority,
                                [&](proxy::DialResult&& r) { result = std::move(r); });
    dialer.start();
    for (int i = 0; i < 200 && !result; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
    REQUIRE(result.has_value());
    return std::move(*result);
  }
};

}  // namespace

TEST_CASE("connect dialer: a name resolving to loopback needs a cidr rule (no rebinding)") {
  Fixture f;
  f.allow("*.test", "", f.listen_port);
  const auto denied = f.dial("rebind.test:" + std::to_string(f.listen_port));
  CHECK(denied.refusal.status == 403);
  CHECK(denied.refusal.reason.find("rebind.test -> 127.0.0.1") != std::string::npos);
  CHECK_FALSE(denied.connection);

  f.allow("", "127.0.0.1/32", f.listen_port);
  const auto ok = f.dial("rebind.test:" + std::to_string(f.listen_port));
  CHECK(ok.refusal.status == 0);
  CHECK(ok.connection);
  CHECK(ok.address == "127.0.0.1:" + std::to_string(f.listen_port));
}

TEST_CASE("connect dialer: DNS failures and timeouts") {
  Fixture f;
  f.allow("*.test", "", 443);
  const auto nx = f.dial("nx.test:443");
  INFO(nx.refusal.reason);
  CHECK(nx.refusal.status == 502);
  CHECK(nx.refusal.reason.starts_with("cannot resolve nx.test"));
  const auto slow = f.dial("slow.test:443");
  CHECK(slow.refusal.status == 504);
  CHECK(slow.refusal.reason.starts_with("timed out resolving slow.test"));
  // Not allowed at all: refused before any DNS query.
  const auto other = f.dial("example.org:443");
  CHECK(other.refusal.status == 403);
  CHECK(other.refusal.reason == "no [[connect.allow]] rule allows example.org:443");
}

TEST_CASE("connect dialer: refused connect is 502") {
  Fixture f;
  close(f.listen_fd);  // nobody listens on the port any more
  f.listen_fd = -1;
  f.allow("", "127.0.0.1/32", f.listen_port);
  const auto r = f.dial("127.0.0.1:" + std::to_string(f.listen_port));
  CHECK(r.refusal.status == 502);
  CHECK(r.refusal.reason.starts_with("cannot connect to 127.0.0.1:"));
}
