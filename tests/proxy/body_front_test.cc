#include "proxy/body_front.h"

#include <doctest/doctest.h>
#include <event2/buffer.h>

#include <string>
#include <vector>

#include "proxy/libevent_ptr.h"

using namespace wsgate;
using http1::BodyStep;

namespace {

http1::BodyFraming chunked() {
  http1::BodyFraming f;
  f.kind = http1::BodyKind::Chunked;
  return f;
}

// An evbuffer holding `text` in one chain per piece (evbuffer_add_reference never merges
// chains), so lines and chunk data cross chain boundaries where the pieces split them.
struct Pieces {
  std::vector<std::string> parts;
  EvbufferPtr buf{evbuffer_new()};
  Pieces(const std::string& text, std::size_t piece) {
    for (std::size_t at = 0; at < text.size(); at += piece) parts.push_back(text.substr(at, piece));
    for (const std::string& p : parts)
      evbuffer_add_reference(buf.get(), p.data(), p.size(), nullptr, nullptr);
  }
};

struct Decoded {
  std::string content;
  bool done = false;
  std::string error;
  std::size_t rest = 0;
};

// Decodes the body at the start of `in` as an exchange does: content moves to another
// evbuffer by evbuffer_remove_buffer, framing is drained.
Decoded decode(evbuffer* in) {
  http1::BodyDecoder d(chunked());
  EvbufferPtr content(evbuffer_new());
  Decoded out;
  for (int guard = 0; guard < 100000; ++guard) {
    const std::size_t available = evbuffer_get_length(in);
    const BodyStep step = d.next(proxy::body_front(in, d, available), available);
    if (step.action == BodyStep::Action::Data) {
      evbuffer_remove_buffer(in, content.get(), step.n);
      d.took(step.n);
    } else if (step.action == BodyStep::Action::Skip) {
      evbuffer_drain(in, step.n);
    } else {
      out.done = step.action == BodyStep::Action::Done;
      if (step.action == BodyStep::Action::Error) out.error = std::string(step.reason);
      break;
    }
  }
  out.content.resize(evbuffer_get_length(content.get()));
  evbuffer_remove(content.get(), out.content.data(), out.content.size());
  out.rest = evbuffer_get_length(in);
  return out;
}

}  // namespace

TEST_CASE("body_front: a chunked body split into chains at every size decodes the same") {
  const std::string body =
      "5;name=value\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
  for (std::size_t piece = 1; piece <= body.size(); ++piece) {
    CAPTURE(piece);
    Pieces in(body, piece);
    const Decoded d = decode(in.buf.get());
    CHECK(d.error.empty());
    CHECK(d.done);
    CHECK(d.content == "helloabcdefghijklmnopqrstuvwxyz");
    CHECK(d.rest == 4);  // "NEXT" belongs to the next message
  }
}

TEST_CASE("body_front: framing errors are found across chain boundaries too") {
  for (const std::string body :
       {"5\r\nhelloXY0\r\n\r\n", "5\n\r\nhello\r\n0\r\n\r\n", "zz\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"}) {
    for (std::size_t piece = 1; piece <= body.size(); ++piece) {
      CAPTURE(body);
      CAPTURE(piece);
      Pieces in(body, piece);
      CHECK_FALSE(decode(in.buf.get()).error.empty());
    }
  }
}

TEST_CASE("body_front: content is not made contiguous, a line in the first chain is not copied") {
  const std::string size_line = "4000\r\n";
  const std::string data(0x4000, 'x');
  std::string tail = "\r\n0\r\n\r\n";
  EvbufferPtr in(evbuffer_new());
  evbuffer_add_reference(in.get(), size_line.data(), size_line.size(), nullptr, nullptr);
  // The chunk data in two chains: showing kMaxLine + 2 bytes would have pulled them up.
  evbuffer_add_reference(in.get(), data.data(), 10, nullptr, nullptr);
  evbuffer_add_reference(in.get(), data.data() + 10, data.size() - 10, nullptr, nullptr);
  evbuffer_add_reference(in.get(), tail.data(), tail.size(), nullptr, nullptr);

  http1::BodyDecoder d(chunked());
  std::size_t available = evbuffer_get_length(in.get());
  const std::string_view front = proxy::body_front(in.get(), d, available);
  CHECK(front.data() == size_line.data());  // the caller's own bytes: no copy
  const BodyStep size = d.next(front, available);
  REQUIRE(size.action == BodyStep::Action::Skip);
  CHECK(size.n == size_line.size());
  evbuffer_drain(in.get(), size.n);

  CHECK_FALSE(d.needs_front());
  available = evbuffer_get_length(in.get());
  CHECK(proxy::body_front(in.get(), d, available).empty());
  const BodyStep content = d.next({}, available);
  REQUIRE(content.action == BodyStep::Action::Data);
  CHECK(content.n == data.size());
  // Both pieces of the content are still the caller's chains, not a pulled-up copy.
  evbuffer_iovec v[2];
  REQUIRE(evbuffer_peek(in.get(), -1, nullptr, v, 2) == 2);
  CHECK(v[0].iov_base == data.data());
  CHECK(v[1].iov_base == data.data() + 10);
}
