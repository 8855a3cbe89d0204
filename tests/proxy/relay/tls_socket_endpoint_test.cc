// TlsSocketEndpoint on a real event_base over a socketpair, with a TLS peer driven by
// hand: taking over a bufferevent_openssl after its handshake (its buffered bytes, the
// records its SSL still holds, its socket), data both ways, writes the socket does not
// take at once, close_notify and FIN as EOF, a reset and a protocol error as errors,
// close_notify from finish(), and a TLS 1.3 KeyUpdate crossing our own traffic.
#include "proxy/relay/tls_socket_endpoint.h"

#include <doctest/doctest.h>
#include <event2/bufferevent_ssl.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "proxy/relay/socket_io.h"
#include "tests/proxy/relay/endpoint_test_support.h"

using namespace wsgate;
using proxy::Endpoint;
using proxy::TlsSocketEndpoint;
using test::loop_once;
using test::Recorder;
using test::text;

namespace {

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// A server context with a fresh self-signed P-256 certificate, and a client context
// that does not verify it; made once for the whole file.
struct Contexts {
  CtxPtr server{SSL_CTX_new(TLS_server_method())};
  CtxPtr client{SSL_CTX_new(TLS_client_method())};
  Contexts() {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    SSL_CTX_use_certificate(server.get(), x);
    SSL_CTX_use_PrivateKey(server.get(), key);
    SSL_CTX_set_mode(server.get(), SSL_MODE_RELEASE_BUFFERS);  // as tls/server_context.cc
    X509_free(x);
    EVP_PKEY_free(key);
    SSL_CTX_set_verify(client.get(), SSL_VERIFY_NONE, nullptr);
  }
};

Contexts& contexts() {
  static Contexts c;
  return c;
}

// The gateway's side as a bufferevent_openssl, as gateway/h1/h1_connection.cc makes it,
// and the client's side as a bare SSL on the other socket, both handshaken.
struct TlsPair {
  EventBasePtr base{event_base_new()};
  int gw = -1, peer_fd = -1;
  BufferEventPtr bev;
  SSL* peer = nullptr;

  TlsPair() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    gw = fds[0];
    peer_fd = fds[1];
    bev.reset(bufferevent_openssl_socket_new(base.get(), gw, SSL_new(contexts().server.get()),
                                             BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
    bufferevent_openssl_set_allow_dirty_shutdown(bev.get(), 1);
    bufferevent_enable(bev.get(), EV_READ);
    peer = SSL_new(contexts().client.get());
    SSL_set_fd(peer, peer_fd);
    SSL_set_connect_state(peer);
    SSL* server = bufferevent_openssl_get_ssl(bev.get());
    for (int i = 0; i < 1000 && !(SSL_is_init_finished(peer) && SSL_is_init_finished(server));
         ++i) {
      SSL_do_handshake(peer);
      ERR_clear_error();
      loop_once(base.get());
    }
    REQUIRE(SSL_is_init_finished(peer));
    REQUIRE(SSL_is_init_finished(server));
  }
  ~TlsPair() {
    if (peer != nullptr) SSL_free(peer);
    if (peer_fd >= 0) close(peer_fd);
  }

  // The peer sends all of `s`, letting the gateway's loop run while the socket is full.
  void send(const std::string& s) {
    std::size_t done = 0;
    for (int i = 0; i < 100000 && done < s.size(); ++i) {
      const int n = SSL_write(peer, s.data() + done, static_cast<int>(s.size() - done));
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else {
        ERR_clear_error();
        loop_once(base.get());
      }
    }
    REQUIRE(done == s.size());
  }
  // What the peer can read now; `closed` set when it reads close_notify or EOF.
  std::string receive(bool* closed = nullptr) {
    std::string got;
    char buf[16384];
    for (;;) {
      const int n = SSL_read(peer, buf, sizeof(buf));
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      const int err = SSL_get_error(peer, n);
      ERR_clear_error();
      if (closed != nullptr && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        *closed = true;
      return got;
    }
  }
  // A few loop turns, for what must not happen.
  void settle() {
    run_until([] { return false; }, 50);
  }
  // Runs the loop until `done()` or a bound on turns (about `turns` ms).
  template <typename F>
  void run_until(F done, int turns = 2000) {
    for (int i = 0; i < turns && !done(); ++i) {
      timeval tv{0, 1000};
      event_base_loopexit(base.get(), &tv);
      event_base_loop(base.get(), 0);
    }
  }
};

std::unique_ptr<TlsSocketEndpoint> take(TlsPair& p) {
  return TlsSocketEndpoint::take(std::move(p.bev));
}

}  // namespace

TEST_CASE("socket_of names the socket bufferevent_getfd names, plain and OpenSSL") {
  EventBasePtr base(event_base_new());
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
  BufferEventPtr plain(bufferevent_socket_new(base.get(), fds[0], BEV_OPT_CLOSE_ON_FREE));
  CHECK(proxy::socket_of(plain.get()) == fds[0]);
  CHECK(proxy::socket_of(plain.get()) == bufferevent_getfd(plain.get()));
  BufferEventPtr tls(
      bufferevent_openssl_socket_new(base.get(), fds[1], SSL_new(contexts().server.get()),
                                     BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
  CHECK(proxy::socket_of(tls.get()) == fds[1]);
  CHECK(proxy::socket_of(tls.get()) == bufferevent_getfd(tls.get()));
  // Without a socket, and after one is set.
  BufferEventPtr none(bufferevent_socket_new(base.get(), -1, BEV_OPT_CLOSE_ON_FREE));
  CHECK(proxy::socket_of(none.get()) == -1);
  int more[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, more) == 0);
  bufferevent_setfd(none.get(), more[0]);
  CHECK(proxy::socket_of(none.get()) == more[0]);
  close(more[1]);
}

TEST_CASE("TlsSocketEndpoint::take keeps buffered bytes, SSL-held records and the socket") {
  TlsPair p;
  // Bytes the bufferevent decrypted past a head, then a record it has not read yet of
  // which part is decrypted and held by OpenSSL (SSL_pending), not by the socket.
  p.send("first");
  p.run_until([&] { return evbuffer_get_length(bufferevent_get_input(p.bev.get())) >= 5; });
  REQUIRE(text(bufferevent_get_input(p.bev.get())) == "first");
  bufferevent_disable(p.bev.get(), EV_READ);
  p.send("held-by-openssl");
  SSL* server = bufferevent_openssl_get_ssl(p.bev.get());
  char two[4];
  int n = -1;
  for (int i = 0; i < 100 && n <= 0; ++i) {
    n = SSL_read(server, two, 4);
    ERR_clear_error();
  }
  REQUIRE(n == 4);  // "held"; the rest is in the SSL, nothing is left on the socket
  REQUIRE(SSL_pending(server) > 0);
  evbuffer_add(bufferevent_get_input(p.bev.get()), two, 4);
  evbuffer_add(bufferevent_get_output(p.bev.get()), "HTTP/1.1 101\r\n\r\n", 16);

  std::unique_ptr<TlsSocketEndpoint> e = take(p);
  loop_once(p.base.get());  // the freed bufferevent is finalised: socket and SSL stay
  CHECK(fcntl(p.gw, F_GETFD) != -1);
  CHECK(text(e->input()) == "firstheld");
  CHECK(text(e->output()) == "HTTP/1.1 101\r\n\r\n");

  Recorder r;
  e->attach(r, 0);  // the queued answer goes now
  CHECK(evbuffer_get_length(e->output()) == 0);
  CHECK(p.receive() == "HTTP/1.1 101\r\n\r\n");

  e->set_reading(true);    // the held record is read without the socket being readable
  CHECK(r.readable == 0);  // not from inside the call
  p.run_until([&] { return r.readable > 0; });
  CHECK(text(e->input()) == "firstheld-by-openssl");

  p.send("second");
  p.run_until([&] { return text(e->input()).size() >= 26; });
  CHECK(text(e->input()) == "firstheld-by-opensslsecond");
  CHECK(r.error == 0);

  e.reset();  // the endpoint closes its socket
  CHECK(fcntl(p.gw, F_GETFD) == -1);
  CHECK(errno == EBADF);
}

TEST_CASE("TlsSocketEndpoint relays both ways and reads only while reading is on") {
  TlsPair p;
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  p.send("ping");
  p.settle();  // a few turns: reading is off
  CHECK(r.readable == 0);
  e->set_reading(true);
  p.run_until([&] { return r.readable > 0; });
  CHECK(text(e->input()) == "ping");
  evbuffer_drain(e->input(), 4);
  evbuffer_add(e->output(), "pong", 4);
  e->flush();
  CHECK(evbuffer_get_length(e->output()) == 0);
  CHECK(p.receive() == "pong");

  // Many small chains at once go out, in order.
  std::string many;
  for (int i = 0; i < 200; ++i) {
    const std::string m = "message " + std::to_string(i) + ";";
    evbuffer_add(e->output(), m.data(), m.size());
    many += m;
  }
  e->flush();
  std::string got;
  p.run_until([&] {
    got += p.receive();
    return got.size() >= many.size();
  });
  CHECK(got == many);
  CHECK(r.error == 0);
  CHECK(r.eof == 0);
}

TEST_CASE("TlsSocketEndpoint is not misled by an error another caller left in the queue") {
  // SSL_get_error(3) reads the thread's error queue: an old entry there must not turn
  // the peer's close_notify into a failure.
  TlsPair p;
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  e->set_reading(true);
  p.send("after an error");  // (the test's own client empties the queue)
  SSL_shutdown(p.peer);      // close_notify: SSL_read returns 0, SSL_get_error says why
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
  p.run_until([&] { return r.eof > 0 || r.error > 0; });
  CHECK(r.eof == 1);
  CHECK(r.error == 0);
  CHECK(text(e->input()) == "after an error");
}

TEST_CASE("TlsSocketEndpoint writes what the socket does not take once it is writable") {
  TlsPair p;
  int small = 4096;
  setsockopt(p.gw, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  std::string big(1 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  evbuffer_add(e->output(), big.data(), big.size());
  e->flush();
  REQUIRE(evbuffer_get_length(e->output()) > 0);  // the rest waits for the write event
  CHECK(e->unsent_bytes() == evbuffer_get_length(e->output()));
  // More bytes queue behind the wait, in order.
  evbuffer_add(e->output(), "tail", 4);
  e->flush();
  std::string got;
  p.run_until([&] {
    got += p.receive();
    return got.size() >= big.size() + 4;
  });
  CHECK(got.size() == big.size() + 4);
  CHECK(got == big + "tail");
  CHECK(evbuffer_get_length(e->output()) == 0);
  CHECK(r.drained >= 1);  // at the low watermark (0): emptied
  CHECK(r.error == 0);
}

TEST_CASE("TlsSocketEndpoint reports close_notify as EOF, after the bytes before it") {
  TlsPair p;
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  e->set_reading(true);
  p.send("last words");
  SSL_shutdown(p.peer);  // RFC 8446 6.1 close_notify
  p.run_until([&] { return r.eof > 0; });
  CHECK(r.eof == 1);
  CHECK(r.error == 0);
  CHECK(text(e->input()) == "last words");
  // Writing still works after the peer's close_notify (TLS 1.3 half-close).
  evbuffer_add(e->output(), "bye", 3);
  e->flush();
  CHECK(p.receive() == "bye");
  e->detach();
  e->finish();  // our close_notify
  bool closed = false;
  p.receive(&closed);
  CHECK(closed);
  CHECK((SSL_get_shutdown(p.peer) & SSL_RECEIVED_SHUTDOWN) != 0);
}

TEST_CASE("TlsSocketEndpoint reports a FIN without close_notify as EOF") {
  TlsPair p;
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  e->set_reading(true);
  p.send("cut");
  shutdown(p.peer_fd, SHUT_WR);
  p.run_until([&] { return r.eof > 0 || r.error > 0; });
  CHECK(r.eof == 1);
  CHECK(r.error == 0);
  CHECK(text(e->input()) == "cut");
}

TEST_CASE("TlsSocketEndpoint reports a reset and a protocol error as one error") {
  SUBCASE("reset") {
    TlsPair p;
    auto e = take(p);
    Recorder r;
    e->attach(r, 0);
    e->set_reading(true);
    // A Unix socket closed with unread bytes resets its peer (ECONNRESET).
    evbuffer_add(e->output(), "unread", 6);
    e->flush();
    SSL_free(p.peer);
    p.peer = nullptr;
    close(p.peer_fd);
    p.peer_fd = -1;
    p.run_until([&] { return r.error > 0 || r.eof > 0; });
    CHECK(r.error == 1);
    CHECK(r.eof == 0);
  }
  SUBCASE("bytes that are not a TLS record") {
    TlsPair p;
    auto e = take(p);
    Recorder r;
    e->attach(r, 0);
    e->set_reading(true);
    REQUIRE(write(p.peer_fd, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
    p.run_until([&] { return r.error > 0 || r.eof > 0; });
    CHECK(r.error == 1);
    CHECK(r.eof == 0);
    e->set_reading(true);
    evbuffer_add(e->output(), "late", 4);
    e->flush();
    p.settle();
    CHECK(r.error == 1);  // at most once
  }
}

TEST_CASE("TlsSocketEndpoint reports a write to a closed peer from the loop, once") {
  TlsPair p;
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  SSL_free(p.peer);
  p.peer = nullptr;
  close(p.peer_fd);
  p.peer_fd = -1;
  evbuffer_add(e->output(), "late", 4);
  e->flush();  // EPIPE: reported from the event loop, not from inside flush()
  CHECK(r.error == 0);
  p.run_until([&] { return r.error > 0; });
  CHECK(r.error == 1);
  evbuffer_add(e->output(), "again", 5);
  e->flush();
  p.settle();
  CHECK(r.error == 1);
}

TEST_CASE("TlsSocketEndpoint keeps both directions through a TLS 1.3 KeyUpdate") {
  TlsPair p;
  if (SSL_version(p.peer) != TLS1_3_VERSION) {
    MESSAGE("skipped: the handshake did not negotiate TLS 1.3");
    return;
  }
  int small = 4096;
  setsockopt(p.gw, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  auto e = take(p);
  Recorder r;
  e->attach(r, 0);
  e->set_reading(true);
  // Our side's socket is full when the peer asks for a KeyUpdate (RFC 8446 4.6.3): the
  // answer must wait behind the data, and reading and writing go on after it.
  const std::string big(256 * 1024, 'k');
  evbuffer_add(e->output(), big.data(), big.size());
  e->flush();
  REQUIRE(evbuffer_get_length(e->output()) > 0);
  REQUIRE(SSL_key_update(p.peer, SSL_KEY_UPDATE_REQUESTED) == 1);
  p.send("after update");
  std::string got;
  p.run_until([&] {
    got += p.receive();
    return got.size() >= big.size() && text(e->input()) == "after update";
  });
  CHECK(got == big);
  CHECK(text(e->input()) == "after update");
  evbuffer_add(e->output(), "done", 4);
  e->flush();
  p.run_until([&] {
    got += p.receive();
    return got.size() >= big.size() + 4;
  });
  CHECK(got == big + "done");
  CHECK(r.error == 0);
}
