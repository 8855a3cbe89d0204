// SocketEndpoint on a real event_base over a socketpair: taking over a bufferevent's
// socket and buffered bytes, reading, writing what the socket does not take at once,
// EOF, and closing the socket only when the endpoint goes.
#include "proxy/relay/socket_endpoint.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/proxy/relay/endpoint_test_support.h"

using namespace wsgate;
using proxy::Endpoint;
using proxy::SocketEndpoint;
using test::loop_once;
using test::Recorder;
using test::text;

namespace {

struct Pair {
  int gw = -1, peer = -1;
  Pair() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    gw = fds[0];
    peer = fds[1];
  }
  ~Pair() { close(peer); }
};

std::string read_all(int fd) {
  std::string s;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return s;
    s.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

TEST_CASE("SocketEndpoint::take keeps the bufferevent's bytes and socket, not the bufferevent") {
  EventBasePtr base(event_base_new());
  Pair p;
  BufferEventPtr bev(bufferevent_socket_new(base.get(), p.gw, BEV_OPT_CLOSE_ON_FREE));
  bufferevent_enable(bev.get(), EV_READ);
  // Bytes read past a head, and an answer queued but not written yet.
  REQUIRE(write(p.peer, "first", 5) == 5);
  for (int i = 0; i < 50 && evbuffer_get_length(bufferevent_get_input(bev.get())) < 5; ++i)
    event_base_loop(base.get(), EVLOOP_ONCE);
  REQUIRE(text(bufferevent_get_input(bev.get())) == "first");
  evbuffer_add(bufferevent_get_output(bev.get()), "HTTP/1.1 101\r\n\r\n", 16);

  std::unique_ptr<SocketEndpoint> e = SocketEndpoint::take(std::move(bev));
  loop_once(base.get());  // the freed bufferevent is finalised; the socket stays open
  CHECK(fcntl(p.gw, F_GETFD) != -1);
  CHECK(text(e->input()) == "first");
  CHECK(text(e->output()) == "HTTP/1.1 101\r\n\r\n");

  Recorder r;
  e->attach(r, 0);  // the queued answer goes now
  CHECK(evbuffer_get_length(e->output()) == 0);
  CHECK(read_all(p.peer) == "HTTP/1.1 101\r\n\r\n");

  e->set_reading(true);
  REQUIRE(write(p.peer, "second", 6) == 6);
  for (int i = 0; i < 50 && r.readable == 0; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
  CHECK(r.readable == 1);
  CHECK(text(e->input()) == "firstsecond");

  shutdown(p.peer, SHUT_WR);
  for (int i = 0; i < 50 && r.eof == 0; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
  CHECK(r.eof == 1);
  CHECK(r.error == 0);

  e.reset();  // the endpoint closes its socket
  CHECK(fcntl(p.gw, F_GETFD) == -1);
  CHECK(errno == EBADF);
}

TEST_CASE("SocketEndpoint writes what the socket does not take once it is writable") {
  EventBasePtr base(event_base_new());
  Pair p;
  int small = 4096;
  setsockopt(p.gw, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  SocketEndpoint e(base.get(), p.gw);
  Recorder r;
  e.attach(r, 0);
  const std::string big(1 << 20, 'x');
  evbuffer_add(e.output(), big.data(), big.size());
  e.flush();
  REQUIRE(evbuffer_get_length(e.output()) > 0);  // the rest waits for the write event
  CHECK(e.unsent_bytes() >= evbuffer_get_length(e.output()));
  std::string got;
  for (int i = 0; i < 10000 && got.size() < big.size(); ++i) {
    got += read_all(p.peer);
    loop_once(base.get());
  }
  CHECK(got.size() == big.size());
  CHECK(evbuffer_get_length(e.output()) == 0);
  CHECK(r.drained >= 1);  // at the low watermark (0): emptied
  CHECK(r.error == 0);
}

TEST_CASE("SocketEndpoint frees its empty buffers while idle and makes them again when used") {
  EventBasePtr base(event_base_new());
  Pair p;
  SocketEndpoint e(base.get(), p.gw);
  Recorder r;
  e.attach(r, 0);
  e.set_reading(true);
  evbuffer_add(e.input(), "kept", 4);  // bytes not taken yet stay, with their buffer
  e.release_idle_buffers();
  CHECK(text(e.input()) == "kept");
  evbuffer_drain(e.input(), 4);
  e.release_idle_buffers();
  CHECK(e.output_length() == 0);  // asked without making a buffer
  REQUIRE(write(p.peer, "ping", 4) == 4);
  for (int i = 0; i < 100 && r.readable == 0; ++i) loop_once(base.get());
  CHECK(text(e.input()) == "ping");  // read into a new buffer
  evbuffer_add(e.output(), "pong", 4);
  e.flush();
  CHECK(e.output_length() == 0);
  CHECK(read_all(p.peer) == "pong");
}

TEST_CASE("SocketEndpoint reports a write to a closed peer as one error") {
  EventBasePtr base(event_base_new());
  Pair p;
  SocketEndpoint e(base.get(), p.gw);
  Recorder r;
  e.attach(r, 0);
  close(p.peer);
  p.peer = socket(AF_UNIX, SOCK_STREAM, 0);  // something for ~Pair to close
  evbuffer_add(e.output(), "late", 4);
  e.flush();  // EPIPE: reported from the event loop, not from inside flush()
  CHECK(r.error == 0);
  for (int i = 0; i < 50 && r.error == 0; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
  CHECK(r.error == 1);
  evbuffer_add(e.output(), "again", 5);
  e.flush();
  for (int i = 0; i < 5; ++i) loop_once(base.get());
  CHECK(r.error == 1);  // at most once
}
