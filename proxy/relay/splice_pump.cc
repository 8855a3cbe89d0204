#include "proxy/relay/splice_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace wsgate::proxy {

std::unique_ptr<SplicePump> SplicePump::create(event_base* base, evutil_socket_t from,
                                               evutil_socket_t to, uint64_t bytes, Events events,
                                               int pipe_bytes) {
  std::unique_ptr<SplicePump> pump(new SplicePump(from, to, bytes, std::move(events)));
  if (pipe2(pump->pipe_, O_NONBLOCK | O_CLOEXEC) != 0) return nullptr;
  // A larger pipe moves more per call; the default (64 KiB) still works when the
  // system's pipe-max-size (or the user's pipe buffer limit) refuses.
  const int size = fcntl(pump->pipe_[1], F_SETPIPE_SZ, pipe_bytes);
  const int got = size > 0 ? size : fcntl(pump->pipe_[1], F_GETPIPE_SZ);
  pump->capacity_ = got > 0 ? static_cast<std::size_t>(got) : 65536;
  pump->readable_.reset(event_new(base, from, EV_READ | EV_PERSIST, &on_ready, pump.get()));
  pump->writable_.reset(event_new(base, to, EV_WRITE | EV_PERSIST, &on_ready, pump.get()));
  return pump;
}

SplicePump::SplicePump(evutil_socket_t from, evutil_socket_t to, uint64_t bytes, Events events)
    : from_(from), to_(to), to_read_(bytes), events_(std::move(events)) {}

SplicePump::~SplicePump() {
  readable_.reset();
  writable_.reset();
  for (int fd : pipe_)
    if (fd >= 0) close(fd);
}

void SplicePump::frame(std::string_view prefix, std::string_view suffix) {
  // The pipe is empty here: a few bytes always fit (a pipe holds at least a page).
  while (!prefix.empty()) {
    const ssize_t n = write(pipe_[1], prefix.data(), prefix.size());
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      source_ended_ = true;  // cannot happen with an empty pipe; reported as a failure
      source_error_ = n < 0 ? errno : EIO;
      break;
    }
    prefix.remove_prefix(static_cast<std::size_t>(n));
    in_pipe_ += static_cast<std::size_t>(n);
  }
  suffix_.assign(suffix);
}

void SplicePump::restart(uint64_t bytes, Events events) {
  to_read_ = bytes;
  in_pipe_ = 0;
  source_ended_ = false;
  source_error_ = 0;
  suffix_.clear();
  events_ = std::move(events);
}

void SplicePump::start() {
  step();
}

void SplicePump::start_when_ready() {
  watch(readable_.get(), reading_, true);
}

void SplicePump::stop_reading() {
  to_read_ = 0;
  suffix_.clear();  // what it would have ended did not all come
  watch(readable_.get(), reading_, false);
  // The next step (at once from the loop) flushes the pipe, or finds it empty: done.
  event_active(writable_.get(), EV_WRITE, 0);
}

void SplicePump::on_ready(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  static_cast<SplicePump*>(self)->step();
}

void SplicePump::fail(bool source, int error) {
  watch(readable_.get(), reading_, false);
  watch(writable_.get(), writing_, false);
  auto failed = std::move(events_.failed);  // it may destroy the pump, and itself with it
  failed(source, error);
}

void SplicePump::watch(event* ev, bool& watched, bool on) {
  if (on == watched) return;  // no epoll_ctl for a state that does not change
  watched = on;
  if (on) {
    event_add(ev, nullptr);
  } else {
    event_del(ev);
  }
}

void SplicePump::step() {
  bool destination_full = false;
  for (;;) {
    // Source -> pipe, while the pipe has room (SPLICE_F_NONBLOCK: the pipe never blocks;
    // the socket is non-blocking itself).
    bool source_empty = to_read_ == 0 || source_ended_;
    if (!source_ended_ && to_read_ > 0 && in_pipe_ < capacity_) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<uint64_t>(to_read_, capacity_ - in_pipe_));
      const ssize_t n =
          splice(from_, nullptr, pipe_[1], nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        to_read_ -= static_cast<uint64_t>(n);
        in_pipe_ += static_cast<std::size_t>(n);
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        // The source ended early: what the pipe holds still goes, then the failure.
        source_ended_ = true;
        source_error_ = n == 0 ? 0 : errno;
        source_empty = true;
      } else {
        source_empty = true;
      }
    }
    // Then the suffix, behind the last byte from the source.
    if (to_read_ == 0 && !source_ended_ && !suffix_.empty() && in_pipe_ < capacity_) {
      const ssize_t n = write(pipe_[1], suffix_.data(), suffix_.size());
      if (n > 0) {
        suffix_.erase(0, static_cast<std::size_t>(n));
        in_pipe_ += static_cast<std::size_t>(n);
      }
    }
    // Pipe -> destination.
    std::size_t sent = 0;
    while (in_pipe_ > 0) {
      const ssize_t n =
          splice(pipe_[0], nullptr, to_, nullptr, in_pipe_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        in_pipe_ -= static_cast<std::size_t>(n);
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        destination_full = true;
        break;
      }
      const int error = n == 0 ? 0 : errno;
      if (sent > 0) events_.moved(sent);
      fail(false, error);
      return;
    }
    if (sent > 0) events_.moved(sent);
    if (source_ended_ && in_pipe_ == 0) {
      fail(true, source_error_);
      return;
    }
    if (to_read_ == 0 && in_pipe_ == 0 && suffix_.empty()) {
      watch(readable_.get(), reading_, false);
      watch(writable_.get(), writing_, false);
      auto done = std::move(events_.done);  // it may destroy the pump, and itself with it
      done();
      return;
    }
    // Another turn only for a suffix the full pipe held back (the pipe has room now).
    const bool suffix_due = to_read_ == 0 && !source_ended_ && !suffix_.empty();
    if (destination_full || (source_empty && !suffix_due)) break;
  }
  // Read while the pipe has room; wait for the destination while it is full.
  watch(readable_.get(), reading_, to_read_ > 0 && !source_ended_ && !destination_full);
  watch(writable_.get(), writing_, destination_full);
}

}  // namespace wsgate::proxy
