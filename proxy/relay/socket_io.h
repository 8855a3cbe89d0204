// Plain sockets behind bufferevents, read and written directly where libevent's own path
// costs system calls for nothing:
// - libevent 2.1 reads at most 4096 bytes per readiness event (EVBUFFER_MAX_READ), so a
//   bulk transfer costs a wake-up, a FIONREAD and a readv per 4 KiB (a 100 MiB download:
//   26,000 of each), and asks FIONREAD before every read. Code that reads a plain socket
//   itself (proxy/relay/read_watch.h) calls read_socket(): one recv of up to what it
//   asks for into the input buffer's free space, without a copy.
// - libevent reads and writes with readv and writev, which go through the file layer
//   (fdget_pos, rw_verify_area, fsnotify) on their way to the socket; recv and send go
//   to it directly, and a 64-byte message pays that layer on every call (issue 13).
// - bytes added to a bufferevent's output are sent from its write event: the socket is
//   registered for EPOLLOUT, reported writable, written, and unregistered, two epoll_ctl
//   calls and a loop turn per response. send_now() writes at once when nothing is queued
//   before the bytes, and leaves only what does not fit to the bufferevent.
#pragma once

#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <sys/types.h>

#include <cstddef>

namespace wsgate::proxy {

// The socket under a socket-based bufferevent (plain or OpenSSL), or -1. The same as
// bufferevent_getfd() without its locked control call (about 65 instructions, several
// times per forwarded request): such a bufferevent's read event is assigned its socket
// (event2/bufferevent_struct.h).
inline evutil_socket_t socket_of(const bufferevent* bev) {
  return event_get_fd(&bev->ev_read);
}

// What one read from a socket did.
enum class ReadOutcome { Data, WouldBlock, Eof, Error };

// Reads up to `max` bytes from socket `s` into `in` (one recv, or one recvmsg when the
// reserved space spans two chains, into the buffer's free space: no FIONREAD, no copy).
// `in` must not have its end frozen.
ReadOutcome read_socket(evutil_socket_t s, evbuffer* in, std::size_t max);

// Writes the front of `out` to socket `s` (one send, or one sendmsg over up to
// kWriteChains chains) and drains what the socket took. Returns what the call returned
// (-1 with errno set). MSG_NOSIGNAL: a peer gone is an EPIPE, not a SIGPIPE.
constexpr int kWriteChains = 16;
ssize_t write_socket(evutil_socket_t s, evbuffer* out);

// Moves `data` to the bufferevent's socket: written now (write_socket) when `plain` and
// its output is empty, whatever is left (or all of it) appended to its output, which
// its write event sends (and where a socket error is reported).
void send_now(bufferevent* bev, evbuffer* data, bool plain);
// The same for bytes in memory (copied only when they do not all fit at once).
void send_now(bufferevent* bev, const char* data, std::size_t size, bool plain);

}  // namespace wsgate::proxy
