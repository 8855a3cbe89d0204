#include "proxy/relay/splice_pump.h"

#include <doctest/doctest.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using wsgate::proxy::SplicePump;

namespace {

struct Pair {
  int fd[2] = {-1, -1};
  Pair() {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0);
    for (int f : fd) fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK);
  }
  ~Pair() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
};

struct Outcome {
  std::size_t moved = 0;
  bool done = false;
  std::optional<bool> failed_source;
};

SplicePump::Events events_for(Outcome& out) {
  SplicePump::Events ev;
  ev.moved = [&out](std::size_t n) { out.moved += n; };
  ev.done = [&out] { out.done = true; };
  ev.failed = [&out](bool source, int) { out.failed_source = source; };
  return ev;
}

std::unique_ptr<SplicePump> make_pump(event_base* base, int from, int to, uint64_t bytes,
                                      Outcome& out) {
  return SplicePump::create(base, from, to, bytes, events_for(out));
}

// Writes what fits of `data` from `pos`; reads what arrived at `sink` into `got`.
void exchange_some(int src, const std::string& data, std::size_t& pos, int sink, std::string& got) {
  if (pos < data.size()) {
    const ssize_t n = write(src, data.data() + pos, data.size() - pos);
    if (n > 0) pos += static_cast<std::size_t>(n);
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = read(sink, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

// Feeds `data` into the source and runs the loop until the pump is done or failed; the
// destination is read only every `read_every` rounds, so the pump waits for it meanwhile.
// Bounded: every round moves bytes unless the pump is broken.
void run_pump(event_base* base, int src, const std::string& data, int sink, std::string& got,
              const Outcome& out, int read_every) {
  std::size_t pos = 0;
  for (int round = 0; round < 100000 && !out.done && !out.failed_source; ++round) {
    if (round % read_every == 0) {
      exchange_some(src, data, pos, sink, got);
    } else if (pos < data.size()) {
      const ssize_t n = write(src, data.data() + pos, data.size() - pos);
      if (n > 0) pos += static_cast<std::size_t>(n);
    }
    event_base_loop(base, EVLOOP_NONBLOCK);
  }
  std::size_t none = data.size();
  exchange_some(src, data, none, sink, got);  // what is left at the destination
}

}  // namespace

TEST_CASE("splice pump: moves exactly its byte count, in order, through backpressure") {
  event_base* base = event_base_new();
  Pair source, destination;
  constexpr std::size_t kBody = 3 * 1024 * 1024 + 17;
  std::string data(kBody + 100, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) % 251);
  Outcome out;
  auto pump = make_pump(base, source.fd[1], destination.fd[0], kBody, out);
  REQUIRE(pump != nullptr);
  pump->start();
  std::string got;
  run_pump(base, source.fd[0], data, destination.fd[1], got, out, 4);
  REQUIRE(out.done);
  CHECK_FALSE(out.failed_source.has_value());
  CHECK(out.moved == kBody);
  CHECK(pump->left() == 0);
  CHECK(got.size() == kBody);
  CHECK(got == data.substr(0, kBody));
  // The bytes after the body stay in the source socket for whoever reads next.
  char rest[200];
  CHECK(read(source.fd[1], rest, sizeof(rest)) == 100);
  pump.reset();
  event_base_free(base);
}

TEST_CASE("splice pump: a source that closes early and a destination that closes fail") {
  event_base* base = event_base_new();
  SUBCASE("source") {
    Pair source, destination;
    Outcome out;
    auto pump = make_pump(base, source.fd[1], destination.fd[0], 1000, out);
    REQUIRE(pump != nullptr);
    REQUIRE(write(source.fd[0], "abc", 3) == 3);
    close(source.fd[0]);
    source.fd[0] = -1;
    pump->start();
    for (int i = 0; i < 100 && !out.failed_source; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
    REQUIRE(out.failed_source.has_value());
    CHECK(*out.failed_source);
    CHECK(out.moved == 3);
    CHECK_FALSE(out.done);
  }
  SUBCASE("destination") {
    Pair source, destination;
    Outcome out;
    auto pump = make_pump(base, source.fd[1], destination.fd[0], 1000, out);
    REQUIRE(pump != nullptr);
    close(destination.fd[1]);
    destination.fd[1] = -1;
    REQUIRE(write(source.fd[0], "abc", 3) == 3);
    pump->start();
    for (int i = 0; i < 100 && !out.failed_source; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
    REQUIRE(out.failed_source.has_value());
    CHECK_FALSE(*out.failed_source);
  }
  event_base_free(base);
}

TEST_CASE("splice pump: framed runs with one pipe, the suffix after the last byte") {
  // As for the chunks of a chunked body: "size CRLF", the data from the source, "CRLF";
  // then the same pump again for the next chunk. The destination is read rarely, so the
  // pipe fills and the suffix must wait for room behind the data.
  event_base* base = event_base_new();
  Pair source, destination;
  const std::string first(300 * 1024, 'a');
  const std::string second(70 * 1024, 'b');
  Outcome out;
  auto pump = make_pump(base, source.fd[1], destination.fd[0], first.size(), out);
  REQUIRE(pump != nullptr);
  pump->frame("4b000\r\nxy", "\r\n");
  pump->start();
  const std::string expected = "4b000\r\nxy" + first + "\r\n";
  std::string got;
  run_pump(base, source.fd[0], first, destination.fd[1], got, out, 8);
  REQUIRE(out.done);
  CHECK(got == expected);
  CHECK(out.moved == expected.size());  // framing included: the owner takes it off
  // The next run, on the same pipe.
  Outcome next;
  pump->restart(second.size(), events_for(next));
  pump->frame("11800\r\n", "\r\n");
  pump->start();
  got.clear();
  run_pump(base, source.fd[0], second, destination.fd[1], got, next, 1);
  REQUIRE(next.done);
  CHECK(got == "11800\r\n" + second + "\r\n");
  pump.reset();
  event_base_free(base);
}

TEST_CASE("splice pump: a run stopped early does not send its suffix") {
  event_base* base = event_base_new();
  Pair source, destination;
  Outcome out;
  auto pump = make_pump(base, source.fd[1], destination.fd[0], 1000, out);
  REQUIRE(pump != nullptr);
  pump->frame("3e8\r\n", "\r\n");
  REQUIRE(write(source.fd[0], "abc", 3) == 3);
  pump->start();
  pump->stop_reading();
  for (int i = 0; i < 100 && !out.done; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
  REQUIRE(out.done);
  std::string got;
  std::size_t none = 0;
  exchange_some(source.fd[0], std::string(), none, destination.fd[1], got);
  CHECK(got == "3e8\r\nabc");  // what was taken, and no CRLF claiming the chunk ended
  pump.reset();
  event_base_free(base);
}
