// A known number of bytes moved from one socket to another by the kernel, through a pipe
// and splice(2), without passing through user space, between plain sockets: the content
// of a large request whose length is known (HTTP forwarding, issue 15), the payload of
// a large WebSocket frame (the relay, issue 13). A 100 MiB upload costs about half the
// CPU of reading it into buffers and writing it out again (docs/benchmarks.md).
//
// Bounded: at most the pipe's size is in flight (kPipeBytes unless the caller asks for
// less, rounded up by the kernel to a power of two pages). Backpressure: while the pipe holds bytes
// the destination did not take, the source is not read; the destination's writability resumes the
// flow. The pump watches both sockets with events of its own; their owners must not read the source
// or write the destination until it is done.
//
// Ownership: owned by the exchange; destroyed before either socket is closed. `done` and
// `failed` may destroy the pump (it returns right after calling them); `moved` must not.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/libevent_ptr.h"

namespace wsgate::proxy {

class SplicePump {
 public:
  static constexpr int kPipeBytes = 1024 * 1024;

  struct Events {
    std::function<void(std::size_t)> moved;  // bytes that reached the destination
    std::function<void()> done;              // every byte reached it
    // `source`: the source's side failed (or closed early; after what it sent before
    // reached the destination), else the destination's; `error`: the errno, 0 when that
    // side closed before every byte moved.
    std::function<void(bool source, int error)> failed;
  };

  // Null when no pipe can be had (out of descriptors): the caller copies instead.
  static std::unique_ptr<SplicePump> create(event_base* base, evutil_socket_t from,
                                            evutil_socket_t to, uint64_t bytes, Events events,
                                            int pipe_bytes = kPipeBytes);
  ~SplicePump();
  SplicePump(const SplicePump&) = delete;
  SplicePump& operator=(const SplicePump&) = delete;

  // Bytes the destination gets before and after the `bytes` from the source, through the
  // same pipe (an HTTP chunk's size line and its CRLF around content spliced as it is).
  // Before start(); the suffix follows only once every byte came from the source.
  void frame(std::string_view prefix, std::string_view suffix);
  // Once `done` was called: moves `bytes` more, with the same pipe and events on the
  // sockets (no pipe made per chunk of a chunked body). Then frame() and start() again.
  void restart(uint64_t bytes, Events events);
  // Moves what is there now, then on readiness.
  void start();
  // Waits for the source to be readable first, so no event comes from inside the call
  // (for an owner that is itself inside a callback of its own).
  void start_when_ready();
  // Takes nothing more from the source: what the pipe holds still goes, then `done`
  // (from the event loop, never from inside this call).
  void stop_reading();
  uint64_t left() const { return to_read_ + in_pipe_; }
  // Taken from the source, not yet at the destination: what is lost if the pump stops.
  std::size_t in_pipe() const { return in_pipe_; }
  // The destination is not taking bytes (backpressure), as opposed to the source not
  // sending them.
  bool waiting_for_destination() const { return writing_; }

 private:
  SplicePump(evutil_socket_t from, evutil_socket_t to, uint64_t bytes, Events events);
  static void on_ready(evutil_socket_t fd, short what, void* self);
  void step();
  void fail(bool source, int error);
  void watch(event* ev, bool& watched, bool on);

  evutil_socket_t from_;
  evutil_socket_t to_;
  int pipe_[2] = {-1, -1};
  uint64_t to_read_;           // from the source, not yet in the pipe
  std::size_t in_pipe_ = 0;    // in the pipe, not yet at the destination
  std::size_t capacity_ = 0;   // the pipe's size
  bool source_ended_ = false;  // EOF or an error, reported once the pipe is empty
  int source_error_ = 0;
  std::string suffix_;  // still to go into the pipe once the source's bytes are in it
  Events events_;
  EventPtr readable_;
  EventPtr writable_;
  bool reading_ = false;
  bool writing_ = false;
};

}  // namespace wsgate::proxy
