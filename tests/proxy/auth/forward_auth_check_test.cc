// One forward-auth subrequest on a real event loop (proxy/auth/forward_auth_check.cc)
// against a scripted auth service on 127.0.0.1 in the same loop: the verdicts, the body
// bounds, the deadline, an unreachable service, connection reuse through the idle pool,
// and the owner destroying the check from inside `done` (run under ASan).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <netinet/in.h>

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/auth/forward_auth.h"

using namespace wsgate;
using proxy::ForwardAuthVerdict;

namespace {

// An HTTP/1.1 server in the test's loop: each request head (up to CRLFCRLF) is handed to
// `answer`, whose bytes are written back (empty: the server stays silent). It counts its
// connections and the requests it read.
class ScriptedService {
 public:
  using Answer = std::function<std::string(const std::string& request)>;

  ScriptedService(event_base* base, Answer answer) : answer_(std::move(answer)) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener_.reset(evconnlistener_new_bind(base, &ScriptedService::on_accept, this,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                            reinterpret_cast<sockaddr*>(&sin), sizeof(sin)));
    REQUIRE(listener_);
    socklen_t len = sizeof(sin);
    getsockname(evconnlistener_get_fd(listener_.get()), reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
  }

  std::uint16_t port() const { return port_; }
  int connections = 0;
  std::vector<std::string> requests;

 private:
  struct Conn {
    ScriptedService* service;
    BufferEventPtr bev;
  };
  static void on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void* self) {
    auto* s = static_cast<ScriptedService*>(self);
    s->connections++;
    auto& c = s->conns_.emplace_back(Conn{s, nullptr});
    c.bev.reset(bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE));
    bufferevent_setcb(c.bev.get(), &ScriptedService::on_read, nullptr, nullptr, &c);
    bufferevent_enable(c.bev.get(), EV_READ);
  }
  static void on_read(bufferevent* bev, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    for (;;) {
      evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
      if (end.pos < 0) return;
      std::string head(static_cast<std::size_t>(end.pos) + 4, '\0');
      evbuffer_remove(in, head.data(), head.size());
      c->service->requests.push_back(head);
      const std::string out = c->service->answer_(head);
      if (!out.empty()) bufferevent_write(bev, out.data(), out.size());
    }
  }

  Answer answer_;
  ListenerPtr listener_;
  std::uint16_t port_ = 0;
  std::list<Conn> conns_;
};

// The worker's side: config, pools, balancers, idle pool, the loop. configure() once the
// service's port is known.
struct Fixture {
  EventBasePtr base{event_base_new()};
  conf::Config config;
  std::shared_ptr<proxy::UpstreamPools> pools;
  std::unique_ptr<proxy::Balancers> balancers;
  metrics::WorkerMetrics metrics;
  proxy::IdlePool idle;
  std::vector<std::unique_ptr<proxy::UpstreamConnector>> retired;
  conf::ForwardAuth forward;

  void configure(std::uint16_t port, unsigned keepalive = 8) {
    conf::Upstream u;
    u.name = std::string("auth");
    conf::UpstreamServer s;
    s.host = std::string("127.0.0.1");
    s.port = port;
    s.text = "127.0.0.1:" + std::to_string(port);
    u.servers.push_back(s);
    u.keepalive = keepalive;
    u.retries = 0;
    u.eject_after_failures = 0;
    u.resolve_interval = std::chrono::seconds(0);
    config.upstreams.push_back(u);
    pools = std::make_shared<proxy::UpstreamPools>(config);
    balancers = std::make_unique<proxy::Balancers>(pools, 1);
    forward.upstream = "auth";
    forward.path = "/check";
    forward.response_headers = {"x-user"};
    forward.timeout = std::chrono::milliseconds(300);
  }

  std::unique_ptr<proxy::ForwardAuthCheck> make(proxy::ForwardAuthCheck::Done done) {
    const http::RequestHead request;
    proxy::ForwardAuthCheck::Context ctx;
    ctx.base = base.get();
    ctx.upstream = &config.upstreams[0];
    ctx.servers = balancers->select(config.upstreams[0], "127.0.0.1", request);
    ctx.idle = &idle;
    ctx.retire = [this](std::unique_ptr<proxy::UpstreamConnector> c) {
      retired.push_back(std::move(c));
    };
    ctx.metrics = &metrics;
    ctx.route = "r";
    std::string head = proxy::build_forward_auth_request(
        forward, request, {"auth", "127.0.0.1", "http", config.upstreams[0].keepalive > 0});
    return std::make_unique<proxy::ForwardAuthCheck>(std::move(ctx), forward, std::move(head),
                                                     std::move(done));
  }

  // Runs one check to its verdict (or a 5 s safety deadline).
  std::optional<ForwardAuthVerdict> run() {
    std::optional<ForwardAuthVerdict> got;
    auto check = make([&](ForwardAuthVerdict&& v) { got = std::move(v); });
    check->start();
    CHECK_FALSE(got);  // never from inside start()
    loop_until([&] { return got.has_value(); });
    return got;
  }

  void loop_until(const std::function<bool()>& cond) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!cond() && std::chrono::steady_clock::now() < deadline) {
      Timer tick(base.get(), [] {});
      tick.arm_ms(20);
      event_base_loop(base.get(), EVLOOP_ONCE);
    }
  }

  std::uint64_t subrequests_recorded() const {
    const auto& h = metrics.totals().auth_subrequest_duration;
    const auto it = h.find("r");
    return it == h.end() ? 0 : it->second.count();
  }
};

std::string ok_answer(const std::string& /*request*/) {
  return "HTTP/1.1 200 OK\r\nX-User: alice\r\nX-Internal: no\r\nContent-Length: 2\r\n\r\nok";
}

std::string denied_answer(const std::string& /*request*/) {
  // Chunked, in two chunks.
  return "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"t\"\r\n"
         "Content-Type: application/json\r\nServer: scripted\r\n"
         "Transfer-Encoding: chunked\r\n\r\n"
         "5\r\n{\"e\":\r\n5\r\n\"no\"}\r\n0\r\n\r\n";
}

}  // namespace

TEST_CASE("forward auth check: 200 allows, the connection is pooled for the next checks") {
  Fixture f;
  ScriptedService service(f.base.get(), ok_answer);
  f.configure(service.port());
  auto v = f.run();
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Allowed);
  CHECK(v->upstream_fields == http::Fields{{"X-User", "alice"}});
  REQUIRE(service.requests.size() == 1);
  CHECK(service.requests[0].rfind("GET /check HTTP/1.1\r\n", 0) == 0);
  CHECK(f.idle.size() == 1);
  for (int i = 0; i < 5; ++i) {
    auto again = f.run();
    REQUIRE(again);
    CHECK(again->kind == ForwardAuthVerdict::Kind::Allowed);
  }
  CHECK(service.requests.size() == 6);
  CHECK(service.connections == 1);  // every check after the first took the idle connection
  CHECK(f.subrequests_recorded() == 6);
}

TEST_CASE("forward auth check: keepalive 0 sends Connection close and pools nothing") {
  Fixture f;
  ScriptedService service(f.base.get(), ok_answer);
  f.configure(service.port(), 0);
  for (int i = 0; i < 2; ++i) {
    auto v = f.run();
    REQUIRE(v);
    CHECK(v->kind == ForwardAuthVerdict::Kind::Allowed);
  }
  CHECK(f.idle.size() == 0);
  CHECK(service.connections == 2);
  CHECK(service.requests[0].find("\r\nConnection: close\r\n") != std::string::npos);
}

TEST_CASE("forward auth check: 401 with a chunked body denies with the client's fields") {
  Fixture f;
  ScriptedService service(f.base.get(), denied_answer);
  f.configure(service.port());
  auto v = f.run();
  REQUIRE(v);
  CHECK_MESSAGE(v->kind == ForwardAuthVerdict::Kind::Denied, v->reason);
  CHECK(v->status == 401);
  CHECK(v->body == R"({"e":"no"})");
  const http::ExtraFields want = {{"WWW-Authenticate", "Bearer realm=\"t\""},
                                  {"Content-Type", "application/json"}};
  CHECK(v->client_fields == want);
  CHECK(f.idle.size() == 1);  // a denial's connection is as reusable as any
}

TEST_CASE("forward auth check: an answer over 64 KiB fails, declared or chunked") {
  for (const bool chunked : {false, true}) {
    Fixture f;
    ScriptedService service(f.base.get(), [chunked](const std::string&) {
      if (!chunked) return std::string("HTTP/1.1 403 No\r\nContent-Length: 70000\r\n\r\n");
      std::string out = "HTTP/1.1 403 No\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < 5; ++i) out += "4000\r\n" + std::string(0x4000, 'a') + "\r\n";
      return out + "0\r\n\r\n";
    });
    f.configure(service.port());
    auto v = f.run();
    REQUIRE(v);
    CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
    CHECK(v->reason == "auth service answer over 64 KiB");
    CHECK(f.idle.size() == 0);
  }
}

TEST_CASE("forward auth check: a silent service times out once, within the deadline") {
  Fixture f;
  ScriptedService service(f.base.get(), [](const std::string&) { return std::string(); });
  f.configure(service.port());
  const auto started = std::chrono::steady_clock::now();
  auto v = f.run();
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v->reason == "auth service timed out after 300ms");
  CHECK(took >= std::chrono::milliseconds(290));
  CHECK(took < std::chrono::seconds(2));
  CHECK(f.idle.size() == 0);
  CHECK(f.subrequests_recorded() == 1);
}

TEST_CASE("forward auth check: a head then a stall in the body times out too") {
  Fixture f;
  ScriptedService service(f.base.get(), [](const std::string&) {
    return std::string("HTTP/1.1 401 No\r\nContent-Length: 10\r\n\r\nabc");
  });
  f.configure(service.port());
  auto v = f.run();
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v->reason == "auth service timed out after 300ms");
}

TEST_CASE("forward auth check: nothing listening fails with the connector's reason") {
  Fixture f;
  std::uint16_t port = 0;
  {
    ScriptedService gone(f.base.get(), ok_answer);
    port = gone.port();
  }  // closed: nothing listens there now
  f.configure(port);
  auto v = f.run();
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v->reason.rfind("auth service: cannot connect to upstream 127.0.0.1:", 0) == 0);
}

TEST_CASE("forward auth check: an upstream without servers fails, after start() returned") {
  Fixture f;
  f.configure(1);
  f.config.upstreams[0].servers.clear();
  auto v = f.run();  // checks that done did not run inside start()
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v->reason == "auth service upstream has no servers");
}

TEST_CASE("forward auth check: no server available fails inside the connector, delivered later") {
  Fixture f;
  ScriptedService service(f.base.get(), ok_answer);
  f.configure(service.port());
  f.pools->at(0).server(0).check_up = false;  // the health check says it is down
  auto v = f.run();  // the connector fails inside start(); done must not run there
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v->reason.rfind("auth service: ", 0) == 0);
  CHECK(service.connections == 0);
  // And the owner may destroy the check in that done too.
  std::unique_ptr<proxy::ForwardAuthCheck> check;
  bool done = false;
  check = f.make([&](ForwardAuthVerdict&&) {
    check.reset();
    done = true;
  });
  check->start();
  CHECK_FALSE(done);
  f.loop_until([&] { return done; });
  CHECK(done);
}

TEST_CASE("forward auth check: malformed answers fail with a reason") {
  Fixture f;
  ScriptedService service(f.base.get(), [](const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
  });
  f.configure(service.port());
  auto v = f.run();
  REQUIRE(v);
  CHECK(v->kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v->reason.rfind("auth service 127.0.0.1:", 0) == 0);
}

TEST_CASE("forward auth check: the owner may destroy the check inside done") {
  // Each way a verdict arrives: with the head in the connector's callback, from the body
  // read, from the deadline, and the no-server path.
  const std::vector<std::function<std::string(const std::string&)>> answers = {
      ok_answer,
      denied_answer,
      [](const std::string&) { return std::string(); },
  };
  for (const auto& answer : answers) {
    Fixture f;
    ScriptedService service(f.base.get(), answer);
    f.configure(service.port());
    std::unique_ptr<proxy::ForwardAuthCheck> check;
    bool done = false;
    check = f.make([&](ForwardAuthVerdict&&) {
      check.reset();  // destroys the check while its callback runs
      done = true;
    });
    check->start();
    f.loop_until([&] { return done; });
    CHECK(done);
    CHECK_FALSE(check);
  }
  Fixture f;
  f.configure(1);
  f.config.upstreams[0].servers.clear();
  std::unique_ptr<proxy::ForwardAuthCheck> check;
  bool done = false;
  check = f.make([&](ForwardAuthVerdict&&) {
    check.reset();
    done = true;
  });
  check->start();
  f.loop_until([&] { return done; });
  CHECK(done);
}

TEST_CASE("forward auth check: cancel stops it, done never runs") {
  Fixture f;
  ScriptedService service(f.base.get(), [](const std::string&) { return std::string(); });
  f.configure(service.port());
  bool done = false;
  auto check = f.make([&](ForwardAuthVerdict&&) { done = true; });
  check->start();
  f.loop_until([&] { return !service.requests.empty(); });
  REQUIRE(service.requests.size() == 1);
  check->cancel();
  Timer wait(f.base.get(), [] {});
  wait.arm_ms(400);  // past the check's deadline
  f.loop_until([&] { return !wait.pending(); });
  CHECK_FALSE(done);
  check.reset();
  CHECK_FALSE(done);
}
