#include "proxy/relay/tls_socket_endpoint.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "tls/openssl_errors.h"

namespace wsgate::proxy {
namespace {

// Decrypted bytes taken per readiness event at most: a burst of records; what OpenSSL
// still holds after it is read at the next loop turn. Space is reserved a record's
// worth at a time, as SocketEndpoint reads (an evbuffer chain is a power of two: 32 KiB
// reserved at once would be a 64 KiB allocation for every small message).
constexpr std::size_t kReadBudget = 32 * 1024;
constexpr std::size_t kReserveSize = 16 * 1024;
// Small chains at the output's front are joined up to one full record (RFC 8446 5.1:
// 2^14 bytes of plaintext), so a burst of small messages costs one record and one send,
// not one of each per message.
constexpr std::size_t kRecordSize = 16 * 1024;

// The socket BIO the endpoint gives its SSL. OpenSSL's own socket BIO would do, but it
// answers BIO_get_fd(), and the freed bufferevent_openssl closes whatever fd its SSL's
// BIO answers when it is finalised, a loop turn after take(): this one answers -1.
// recv/send with MSG_NOSIGNAL; a 0 from recv marks EOF, which BIO_eof() reports so that
// SSL_OP_IGNORE_UNEXPECTED_EOF can tell a FIN from a reset.
evutil_socket_t bio_fd(BIO* b) {
  return static_cast<evutil_socket_t>(reinterpret_cast<std::intptr_t>(BIO_get_data(b)));
}

int bio_read(BIO* b, char* out, int size) {
  BIO_clear_retry_flags(b);
  const ssize_t n = recv(bio_fd(b), out, static_cast<std::size_t>(size), 0);
  if (n > 0) return static_cast<int>(n);
  if (n == 0) {
    BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return 0;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
  return -1;
}

int bio_write(BIO* b, const char* in, int size) {
  BIO_clear_retry_flags(b);
  const ssize_t n = send(bio_fd(b), in, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
  return -1;
}

long bio_ctrl(BIO* b, int cmd, long /*num*/, void* /*ptr*/) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    case BIO_C_GET_FD:
      return -1;  // see above: nobody closes the socket but the endpoint
    default:
      return 0;
  }
}

BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wsgate socket");
    BIO_meth_set_read(m, &bio_read);
    BIO_meth_set_write(m, &bio_write);
    BIO_meth_set_ctrl(m, &bio_ctrl);
    return m;
  }();
  return method;
}

}  // namespace

std::unique_ptr<TlsSocketEndpoint> TlsSocketEndpoint::take(BufferEventPtr bev) {
  bufferevent* b = bev.get();
  bufferevent_setcb(b, nullptr, nullptr, nullptr, nullptr);
  bufferevent_disable(b, EV_READ | EV_WRITE);
  SSL* ssl = bufferevent_openssl_get_ssl(b);
  // The bufferevent frees its SSL when it is finalised (BEV_OPT_CLOSE_ON_FREE): our own
  // reference keeps it. Its socket it closes only if the SSL's BIO names it, which ours
  // does not (socket_bio_method).
  SSL_up_ref(ssl);
  auto e = std::make_unique<TlsSocketEndpoint>(bufferevent_get_base(b), bufferevent_getfd(b), ssl);
  // Decrypted bytes read past the request head, and the 101 not encrypted yet. Records
  // OpenSSL decrypted but the bufferevent did not take stay in the SSL: set_reading()
  // reads them (SSL_has_pending) without waiting for the socket.
  evbuffer* in = bufferevent_get_input(b);
  evbuffer* out = bufferevent_get_output(b);
  evbuffer_unfreeze(in, 0);
  evbuffer_unfreeze(out, 1);
  evbuffer_add_buffer(e->in_.get(), in);
  evbuffer_add_buffer(e->out_.get(), out);
  return e;
}

TlsSocketEndpoint::TlsSocketEndpoint(event_base* base, evutil_socket_t fd, SSL* ssl)
    : base_(base),
      fd_(fd),
      ssl_(ssl),
      in_(evbuffer_new()),
      out_(evbuffer_new()),
      read_event_(
          event_new(base, fd, EV_READ | EV_PERSIST, &TlsSocketEndpoint::on_readable, this)) {
  BIO* bio = BIO_new(socket_bio_method());
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // frees the previous BIO (which did not own the socket)
  // A write retried after WANT_WRITE may come from a moved buffer (the output's front
  // pulled up) and may finish at one record (SSL_CTX_set_mode(3)).
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One recv takes every record the kernel holds, not a 5-byte header then a body.
  SSL_set_read_ahead(ssl_, 1);
  // A FIN without close_notify reads as a close (SSL_ERROR_ZERO_RETURN), as the
  // bufferevent's allow_dirty_shutdown meant it to: WebSocket and tunnel bytes carry
  // their own ends, so a truncation is seen there (SSL_CTX_set_options(3)).
  SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

TlsSocketEndpoint::~TlsSocketEndpoint() {
  // The events leave the event loop while the socket is still open.
  read_event_.reset();
  write_event_.reset();
  SSL_free(ssl_);
  evutil_closesocket(fd_);
}

void TlsSocketEndpoint::attach(EndpointEvents& events, std::size_t low_watermark) {
  events_ = &events;
  low_watermark_ = low_watermark;
  // What the previous owner queued (a 101) goes now.
  flush();
  update_events();
}

void TlsSocketEndpoint::detach() {
  events_ = nullptr;
  reading_ = false;
  update_events();
}

void TlsSocketEndpoint::set_reading(bool on) {
  reading_ = on;
  update_events();
  // Records OpenSSL holds already will not make the socket readable.
  if (on && events_ != nullptr && !read_closed_ && SSL_has_pending(ssl_) == 1) schedule_read();
}

void TlsSocketEndpoint::update_events() {
  const bool live = events_ != nullptr && !stopped_;
  const bool want_read =
      live && !read_closed_ && (write_needs_read_ || (reading_ && !read_needs_write_));
  const bool want_write = live && (read_needs_write_ || write_waits_);
  if (want_read != read_on_) {
    read_on_ = want_read;
    if (want_read) {
      event_add(read_event_.get(), nullptr);
    } else {
      event_del(read_event_.get());
    }
  }
  if (want_write != write_on_) {
    write_on_ = want_write;
    if (want_write) {
      ensure_write_event();
      event_add(write_event_.get(), nullptr);
    } else {
      event_del(write_event_.get());
    }
  }
}

void TlsSocketEndpoint::ensure_write_event() {
  if (!write_event_)
    write_event_.reset(
        event_new(base_, fd_, EV_WRITE | EV_PERSIST, &TlsSocketEndpoint::on_writable, this));
}

void TlsSocketEndpoint::schedule_read() {
  event_active(read_event_.get(), EV_READ, 1);
}

TlsSocketEndpoint::Io TlsSocketEndpoint::read_records(bool& got) {
  std::size_t budget = kReadBudget;
  while (budget > 0) {
    std::array<evbuffer_iovec, 2> vec{};
    const int n = evbuffer_reserve_space(
        in_.get(), static_cast<ev_ssize_t>(std::min(budget, kReserveSize)), vec.data(), 2);
    if (n <= 0) return Io::Error;
    Io outcome = Io::Progress;
    bool more = true;
    int used = 0;
    for (int i = 0; i < n && more; ++i) {
      auto& v = vec[static_cast<std::size_t>(i)];
      std::size_t filled = 0;
      while (filled < v.iov_len) {
        tls::clear_openssl_errors();
        const int want = static_cast<int>(std::min<std::size_t>(v.iov_len - filled, INT_MAX));
        const int r = SSL_read(ssl_, static_cast<char*>(v.iov_base) + filled, want);
        if (r <= 0) {
          outcome = classify(SSL_get_error(ssl_, r), /*reading=*/true);
          more = false;
          break;
        }
        filled += static_cast<std::size_t>(r);
        read_needs_write_ = false;
        // Nothing buffered: the socket's readiness says when more comes (one recv per
        // wake-up instead of a last one that says EAGAIN).
        if (SSL_has_pending(ssl_) != 1) {
          more = false;
          break;
        }
      }
      if (filled < v.iov_len) more = false;
      if (filled > 0) {
        v.iov_len = filled;
        used = i + 1;
        budget -= filled;
        got = true;
      }
    }
    evbuffer_commit_space(in_.get(), vec.data(), used);
    if (outcome != Io::Progress || !more) return outcome;
  }
  return Io::Progress;
}

TlsSocketEndpoint::Io TlsSocketEndpoint::classify(int ssl_error, bool reading) {
  switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
      if (reading) {
        read_needs_write_ = false;
      } else {
        write_needs_read_ = true;  // a renegotiation or KeyUpdate wants the peer's bytes
      }
      return Io::Blocked;
    case SSL_ERROR_WANT_WRITE:
      if (reading) {
        read_needs_write_ = true;  // e.g. the answer to a KeyUpdate (RFC 8446 4.6.3)
      } else {
        write_waits_ = true;
      }
      return Io::Blocked;
    case SSL_ERROR_ZERO_RETURN:
      // close_notify (RFC 8446 6.1), or a FIN without it (SSL_OP_IGNORE_UNEXPECTED_EOF).
      return Io::Eof;
    default:
      // SSL_ERROR_SYSCALL (a reset), SSL_ERROR_SSL (a protocol error, a bad record).
      return Io::Error;
  }
}

TlsSocketEndpoint::Io TlsSocketEndpoint::write_records(bool& wrote) {
  write_waits_ = false;
  write_needs_read_ = false;
  while (evbuffer_get_length(out_.get()) > 0) {
    const std::size_t total = evbuffer_get_length(out_.get());
    // SSL_write(3): a retry after WANT_* offers at least the bytes it offered before;
    // they are still the output's front (only the relay appends, at the end).
    const std::size_t target = std::max(std::min(total, kRecordSize), retry_size_);
    evbuffer_iovec first{};
    evbuffer_peek(out_.get(), -1, nullptr, &first, 1);
    std::size_t size = first.iov_len;
    const void* data = first.iov_base;
    if (size < target) {
      size = target;
      data = evbuffer_pullup(out_.get(), static_cast<ev_ssize_t>(size));
      if (data == nullptr) return Io::Error;
    }
    size = std::min<std::size_t>(size, INT_MAX);
    tls::clear_openssl_errors();
    const int r = SSL_write(ssl_, data, static_cast<int>(size));
    if (r <= 0) {
      retry_size_ = size;
      return classify(SSL_get_error(ssl_, r), /*reading=*/false);
    }
    retry_size_ = 0;
    wrote = true;
    evbuffer_drain(out_.get(), static_cast<std::size_t>(r));
  }
  return Io::Progress;
}

void TlsSocketEndpoint::flush() {
  // Write at once, as SocketEndpoint does: with a wait under way the bytes queue
  // behind it.
  if (stopped_ || write_waits_ || write_needs_read_ || evbuffer_get_length(output()) == 0) return;
  bool wrote = false;
  if (write_records(wrote) == Io::Error) {
    fail();
    return;
  }
  update_events();
}

void TlsSocketEndpoint::fail() {
  // Not from inside the relay's call: from the loop (the endpoint contract).
  stopped_ = true;
  failed_ = true;
  update_events();
  ensure_write_event();
  event_active(write_event_.get(), EV_WRITE, 1);
}

void TlsSocketEndpoint::report_error() {
  stopped_ = true;
  failed_ = true;
  read_closed_ = true;
  update_events();
  if (error_reported_) return;
  error_reported_ = true;
  if (events_ != nullptr) events_->on_error(*this);
}

void TlsSocketEndpoint::on_readable(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  auto* e = static_cast<TlsSocketEndpoint*>(self);
  if (e->events_ == nullptr || e->stopped_) return;
  if (e->write_needs_read_) {
    // The write that waited for the peer's bytes goes on (SSL_write(3): retry it).
    if (!e->write_now()) return;
  }
  if (e->reading_ && !e->read_needs_write_) e->read_now();
}

void TlsSocketEndpoint::on_writable(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  auto* e = static_cast<TlsSocketEndpoint*>(self);
  if (e->failed_) {
    e->report_error();
    return;
  }
  if (e->events_ == nullptr || e->stopped_) return;
  if (e->read_needs_write_) {
    // The read that had to write first goes on (SSL_read(3): retry it). The bytes it
    // reads wait in input() if the relay is not reading.
    e->read_needs_write_ = false;
    if (!e->read_now()) return;
  }
  if (e->write_waits_) e->write_now();
  e->update_events();
}

bool TlsSocketEndpoint::write_now() {
  bool wrote = false;
  if (write_records(wrote) == Io::Error) {
    report_error();
    return false;
  }
  update_events();
  // As a bufferevent's write callback: after each write that leaves the output at or
  // below the low watermark.
  if (wrote && evbuffer_get_length(output()) <= low_watermark_) events_->on_drained(*this);
  return events_ != nullptr && !stopped_;
}

bool TlsSocketEndpoint::read_now() {
  bool got = false;
  const Io r = read_records(got);
  if (r == Io::Eof) read_closed_ = true;
  if (r == Io::Error) {
    // Bytes read before the error are the relay's to take or drop with the error.
    report_error();
    return false;
  }
  update_events();
  if (got && reading_) {
    events_->on_readable(*this);
    if (events_ == nullptr || stopped_) return false;
  }
  if (r == Io::Eof) {
    events_->on_eof(*this);
    return false;
  }
  // The budget ran out with records left in OpenSSL: the rest at the next loop turn.
  if (reading_ && !read_needs_write_ && SSL_has_pending(ssl_) == 1) schedule_read();
  return true;
}

void TlsSocketEndpoint::reset() {
  // SO_LINGER 0: closing the socket sends RST instead of FIN.
  const linger reset{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

void TlsSocketEndpoint::abandon() {
  reading_ = false;
  stopped_ = true;
  update_events();
  shutdown(fd_, SHUT_RDWR);
}

void TlsSocketEndpoint::finish() {
  // RFC 8446 6.1: close_notify says the stream ended as meant. Not after a fatal error
  // (SSL_shutdown(3)) or an abandon; one attempt, as the socket closes next.
  if (stopped_ || SSL_is_init_finished(ssl_) != 1) return;
  tls::clear_openssl_errors();
  SSL_shutdown(ssl_);
  tls::clear_openssl_errors();
}

std::size_t TlsSocketEndpoint::unsent_bytes() const {
  // The kernel's queue holds records, not these bytes: the output alone, as before.
  return evbuffer_get_length(out_.get());
}

}  // namespace wsgate::proxy
