// UpstreamConnection on a real event_base over a socketpair: a plain socket read by the
// connection's own event reaches the bufferevent's current callbacks (data, then EOF
// once), follows set_reading(), survives a move to a new owner, and release() hands the
// reading back to the bufferevent.
#include "proxy/upstream/upstream_connection.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

using namespace wsgate;
using proxy::UpstreamConnection;

namespace {

struct Owner {
  std::string got;
  int reads = 0;
  int eofs = 0;
  int errors = 0;
  static void on_read(bufferevent* bev, void* self) {
    auto* o = static_cast<Owner*>(self);
    evbuffer* in = bufferevent_get_input(bev);
    std::string s(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, s.data(), s.size());
    o->got += s;
    ++o->reads;
  }
  static void on_event(bufferevent* /*bev*/, short what, void* self) {
    auto* o = static_cast<Owner*>(self);
    if ((what & BEV_EVENT_EOF) != 0) ++o->eofs;
    if ((what & BEV_EVENT_ERROR) != 0) ++o->errors;
  }
  void watch(bufferevent* bev) { bufferevent_setcb(bev, &on_read, nullptr, &on_event, this); }
};

struct Fixture {
  EventBasePtr base{event_base_new()};
  int gw = -1;
  int peer = -1;
  Fixture() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    gw = fds[0];
    peer = fds[1];
  }
  ~Fixture() {
    if (peer >= 0) close(peer);
  }
  UpstreamConnection connection() {
    UpstreamConnection c(bufferevent_socket_new(base.get(), gw, BEV_OPT_CLOSE_ON_FREE));
    c.read_plain_socket();
    return c;
  }
  void send(std::string_view s) const {
    REQUIRE(write(peer, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
  void turn() const { event_base_loop(base.get(), EVLOOP_NONBLOCK); }
};

}  // namespace

TEST_CASE("upstream connection: its own reads reach the bufferevent's callbacks") {
  Fixture f;
  UpstreamConnection c = f.connection();
  Owner first;
  first.watch(c.get());
  c.set_reading(true);
  CHECK(c.reading());
  f.send("hello");
  f.turn();
  CHECK(first.got == "hello");

  // Paused: the bytes wait in the socket.
  c.set_reading(false);
  f.send(" world");
  f.turn();
  CHECK(first.got == "hello");

  // A new owner (the idle pool, the next request) sets its callbacks; reading resumes.
  UpstreamConnection moved = std::move(c);
  Owner second;
  second.watch(moved.get());
  moved.set_reading(true);
  f.turn();
  CHECK(second.got == " world");
  CHECK(first.got == "hello");

  // EOF is reported once, to the owner of the moment, and reading stays off.
  close(f.peer);
  f.peer = -1;
  f.turn();
  f.turn();
  CHECK(second.eofs == 1);
  CHECK(second.errors == 0);
  CHECK_FALSE(moved.reading());
  moved.set_reading(true);
  CHECK_FALSE(moved.reading());
}

TEST_CASE("upstream connection: release gives the reading back to the bufferevent") {
  Fixture f;
  UpstreamConnection c = f.connection();
  c.set_reading(true);
  BufferEventPtr bev = c.release();
  CHECK_FALSE(c);
  REQUIRE(bev);
  CHECK((bufferevent_get_enabled(bev.get()) & EV_READ) != 0);
  Owner owner;
  owner.watch(bev.get());
  f.send("through libevent");
  f.turn();
  CHECK(owner.got == "through libevent");
}
