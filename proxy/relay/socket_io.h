// Plain sockets behind bufferevents, read and written directly where libevent's own path
// costs system calls for nothing:
// - libevent 2.1 reads at most 4096 bytes per readiness event (EVBUFFER_MAX_READ), so a
//   bulk transfer costs a wake-up, a FIONREAD and a readv per 4 KiB (a 100 MiB download:
//   26,000 of each), and asks FIONREAD before every read. Code that reads a plain socket
//   itself (proxy/relay/read_watch.h) calls read_socket(): one readv of up to what it
//   asks for into the input buffer's free space, without a copy.
// - bytes added to a bufferevent's output are sent from its write event: the socket is
//   registered for EPOLLOUT, reported writable, written, and unregistered, two epoll_ctl
//   calls and a loop turn per response. send_now() writes at once when nothing is queued
//   before the bytes, and leaves only what does not fit to the bufferevent.
#pragma once

#include <event2/bufferevent.h>

#include <cstddef>

namespace wsgate::proxy {

// What one read from a socket did.
enum class ReadOutcome { Data, WouldBlock, Eof, Error };

// Reads up to `max` bytes from socket `s` into `in` (one readv into reserved space of the
// buffer's last chains: no FIONREAD, no copy). `in` must not have its end frozen.
ReadOutcome read_socket(evutil_socket_t s, evbuffer* in, std::size_t max);

// Moves `data` to the bufferevent's socket: written now (one writev) when `plain` and
// its output is empty, whatever is left (or all of it) appended to its output, which
// its write event sends (and where a socket error is reported).
void send_now(bufferevent* bev, evbuffer* data, bool plain);
// The same for bytes in memory (copied only when they do not all fit at once).
void send_now(bufferevent* bev, const char* data, std::size_t size, bool plain);

}  // namespace wsgate::proxy
