// The HTTP/1.1 connection as an HttpDownstream (gateway/exchange/http_downstream.h): a
// forwarded request's content read from the client through its framing (RFC 9112 6-7),
// the upstream's response written back (chunked or with its length, or until close to an
// HTTP/1.0 client), and keep-alive to the next request on the same connection.
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

#include "gateway/h1/h1_connection.h"
#include "proxy/body_front.h"
#include "proxy/relay/socket_io.h"

namespace wsgate::gateway {
namespace {

// An HTTP/1.1 response head for the client: the status line, the exchange's fields, the
// gateway's framing field and Connection: close when the connection ends after it.
class HeadWriter {
 public:
  HeadWriter(const http::ResponseHead& head, std::string_view framing,
             std::string_view framing_value, bool close)
      : head_(head), framing_(framing), framing_value_(framing_value), close_(close) {}

  void write_to(evbuffer* out) const {
    evbuffer_iovec v{};
    const std::size_t size = this->size();
    if (evbuffer_reserve_space(out, static_cast<ev_ssize_t>(size), &v, 1) != 1 ||
        v.iov_len < size) {
      std::string text(size, '\0');
      evbuffer_add(out, text.data(), write(text.data()));
      return;
    }
    v.iov_len = write(static_cast<char*>(v.iov_base));
    evbuffer_commit_space(out, &v, 1);
  }

 private:
  static constexpr std::string_view kClose = "Connection: close\r\n";

  std::size_t size() const {
    std::size_t n = std::string_view("HTTP/1.1 200 \r\n").size() + head_.reason.size() + 2;
    for (const http::FieldView& f : head_.fields) n += f.name.size() + f.value.size() + 4;
    if (!framing_.empty()) n += framing_.size() + framing_value_.size() + 4;
    if (close_) n += kClose.size();
    return n;
  }
  // Writes size() bytes at `p`; returns how many.
  std::size_t write(char* start) const {
    char* p = start;
    const auto put = [&p](std::string_view s) {
      std::memcpy(p, s.data(), s.size());
      p += s.size();
    };
    const auto field = [&put](std::string_view name, std::string_view value) {
      put(name);
      put(": ");
      put(value);
      put("\r\n");
    };
    put("HTTP/1.1 ");
    const int status = head_.status;  // three digits (RFC 9110 15)
    *p++ = static_cast<char>('0' + status / 100 % 10);
    *p++ = static_cast<char>('0' + status / 10 % 10);
    *p++ = static_cast<char>('0' + status % 10);
    put(" ");
    put(head_.reason);
    put("\r\n");
    for (const http::FieldView& f : head_.fields) field(f.name, f.value);
    if (!framing_.empty()) field(framing_, framing_value_);
    if (close_) put(kClose);
    put("\r\n");
    return static_cast<std::size_t>(p - start);
  }

  const http::ResponseHead& head_;
  std::string_view framing_;
  std::string_view framing_value_;
  bool close_;
};

}  // namespace

void H1Connection::next_request() {
  // RFC 9112 9.3: the connection persists; the next request's head is read within
  // handshake_timeout, like the first one's.
  state_ = State::ReadingHead;
  received_bytes_ = false;
  response_chunked_ = false;
  response_begun_ = false;
  close_after_response_ = false;
  request_body_ = http1::BodyDecoder();
  request_batching_.reset(bufferevent_getfd(client_.get()));  // a head is small
  set_read_limit(listener_.max_header_bytes + 4096);
  bufferevent_setwatermark(client_.get(), EV_WRITE, 0, 0);
  await_head();
  // A pipelined request already buffered is read after this loop iteration, not from
  // inside the ending exchange's callbacks.
  if (evbuffer_get_length(bufferevent_get_input(client_.get())) != 0) next_.activate();
}

HttpDownstream::BodyRead H1Connection::read_request_body(evbuffer* to, std::size_t max) {
  BodyRead r = decode_request_body(to, max);
  pace_reading();  // what was taken makes room: reading resumes below the limit
  return r;
}

HttpDownstream::BodyRead H1Connection::decode_request_body(evbuffer* to, std::size_t max) {
  BodyRead r;
  evbuffer* in = bufferevent_get_input(client_.get());
  while (r.moved < max) {
    const std::size_t available = evbuffer_get_length(in);
    const http1::BodyStep step =
        request_body_.next(proxy::body_front(in, request_body_, available), available);
    switch (step.action) {
      case http1::BodyStep::Action::Data: {
        const std::size_t k = std::min(step.n, max - r.moved);
        evbuffer_remove_buffer(in, to, k);
        request_body_.took(k);
        r.moved += k;
        continue;
      }
      case http1::BodyStep::Action::Skip:
        evbuffer_drain(in, step.n);
        continue;
      case http1::BodyStep::Action::Done:
        r.state = BodyState::Done;
        return r;
      case http1::BodyStep::Action::Error:
        // RFC 9112 7.1: the framing cannot be trusted any more; the connection ends
        // after the refusal.
        r.state = BodyState::Failed;
        r.error = {400, std::string(step.reason), {}};
        return r;
      case http1::BodyStep::Action::NeedMore:
        request_batching_.update(proxy::socket_of(client_.get()), request_body_.bytes_expected(),
                                 evbuffer_get_length(in));
        return r;
    }
  }
  if (request_body_.done()) r.state = BodyState::Done;
  return r;
}

void H1Connection::continue_request_body() {
  // The content is read in pieces up to the read watermark, not libevent's 16 KiB.
  bufferevent_set_max_single_read(client_.get(), 256 * 1024);
  if (!expect_continue_) return;
  expect_continue_ = false;
  constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  bufferevent_write(client_.get(), kContinue.data(), kContinue.size());
}

HttpDownstream::BodySocket H1Connection::take_body_socket(uint64_t min_left) {
  const bool chunked = request_body_.kind() == http1::BodyKind::Chunked;
  if (facts_.tls || !client_ || (request_body_.kind() != http1::BodyKind::Length && !chunked))
    return {};
  const evutil_socket_t fd = proxy::socket_of(client_.get());
  // A chunked body: the rest of the current chunk's data (RFC 9112 7.1), whose CRLF and
  // the next chunk-size line are read here again afterwards.
  const uint64_t left = chunked ? request_body_.chunk_data_left() : request_body_.bytes_expected();
  if (chunked && !request_body_.needs_front() && left < min_left)
    chunk_lines_only_ = false;  // small chunks: read ahead as usual
  if (fd < 0 || left < min_left || evbuffer_get_length(bufferevent_get_input(client_.get())) != 0)
    return {};
  // Between spliced chunks, read little more than the next chunk-size line, so that
  // the chunk's data is still in the socket for the next splice.
  chunk_lines_only_ = chunked;
  body_spliced_ = true;
  set_reading(false);
  read_paused_ = true;
  // The kernel reports the socket readable at its own pace again: SO_RCVLOWAT would
  // hold back the last bytes of the body.
  request_batching_.reset(fd);
  request_body_.took(left);
  return {fd, left};
}

void H1Connection::body_socket_done() {
  body_spliced_ = false;
  pace_reading();  // the next request's bytes are read (and held) as usual
}

void H1Connection::begin_response(const http::ResponseHead& head) {
  response_begun_ = true;
  // The rest of an unread request body (or of one the kernel still moves upstream) would
  // be read as the next request: close after this response instead.
  close_after_response_ =
      !keep_alive_ || draining_ || retiring_ || !request_body_.done() || body_spliced_;
  std::string_view framing;  // the gateway's own framing field, if any
  char length_text[20];
  std::size_t length_digits = 0;
  switch (head.body) {
    case http::ResponseHead::Body::None:
      break;
    case http::ResponseHead::Body::Length:
      framing = "Content-Length";
      length_digits = static_cast<std::size_t>(
          std::to_chars(length_text, length_text + sizeof length_text, head.content_length).ptr -
          length_text);
      break;
    case http::ResponseHead::Body::Stream:
      // RFC 9112 7: chunked to an HTTP/1.1 client; an HTTP/1.0 one reads until close.
      if (request_minor_ == 1) {
        response_chunked_ = true;
        framing = "Transfer-Encoding";
      } else {
        close_after_response_ = true;
      }
      break;
  }
  const std::string_view framing_value = response_chunked_
                                             ? std::string_view("chunked")
                                             : std::string_view(length_text, length_digits);
  // The head is written straight into the output (one reservation, no string between).
  const HeadWriter head_text(head, framing, framing_value, close_after_response_);
  stage_for_sending();
  head_text.write_to(staged_.get());
}

void H1Connection::response_body(evbuffer* from, std::size_t n) {
  stage_for_sending();
  evbuffer* out = staged_.get();
  // RFC 9112 7.1: chunk-size CRLF chunk-data CRLF; the data moves without a copy.
  if (response_chunked_) evbuffer_add_printf(out, "%zx\r\n", n);
  evbuffer_remove_buffer(from, out, n);
  if (response_chunked_) evbuffer_add(out, "\r\n", 2);
}

void H1Connection::end_response() {
  if (response_chunked_) {
    stage_for_sending();
    evbuffer_add(staged_.get(), "0\r\n\r\n", 5);
  }
}

void H1Connection::stage_for_sending() {
  if (!staged_) staged_.reset(evbuffer_new());
  send_staged_.activate();  // after this loop iteration's callbacks: one write for all
}

void H1Connection::send_staged() {
  if (!staged_ || evbuffer_get_length(staged_.get()) == 0 || !client_) return;
  // A plain socket is written at once; TLS (and whatever does not fit) goes through the
  // bufferevent's output, whose write callback reports the drain (on_client_drained).
  proxy::send_now(client_.get(), staged_.get(), /*plain=*/!facts_.tls);
  evbuffer* out = bufferevent_get_output(client_.get());
  if (evbuffer_get_length(out) > 0) {
    bufferevent_enable(client_.get(), EV_WRITE);  // its write callback reports the drain
  } else if (state_ == State::Exchanging && exchange_ != nullptr) {
    // All of it went out at once: no write callback will say so.
    exchange_->on_client_drained();
  }
}

std::size_t H1Connection::response_buffered() const {
  const std::size_t staged = staged_ ? evbuffer_get_length(staged_.get()) : 0;
  return staged + evbuffer_get_length(bufferevent_get_output(client_.get()));
}

void H1Connection::set_response_watermark(std::size_t high) {
  // The write callback (on_client_drained) runs once the output is down to high / 2.
  bufferevent_setwatermark(client_.get(), EV_WRITE, high / 2, 0);
  bufferevent_set_max_single_write(client_.get(), static_cast<ev_ssize_t>(high));
}

}  // namespace wsgate::gateway
