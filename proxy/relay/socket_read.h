// One read of everything a plain socket holds, into its bufferevent's input. libevent 2.1
// reads at most 4096 bytes per readiness event (EVBUFFER_MAX_READ), so a bulk transfer
// through a bufferevent costs a wake-up, a FIONREAD and a readv per 4 KiB (a 100 MiB
// download: 26,000 of each). Called from the bufferevent's read callback, this reads the
// rest that is already there into the same input buffer, without a copy.
#pragma once

#include <event2/bufferevent.h>

#include <cstddef>

namespace wsgate::proxy {

// Reads up to `max` more bytes from the bufferevent's socket (a plain socket: not for
// TLS, whose bytes the bufferevent decrypts). EOF and EAGAIN are left to the
// bufferevent's next read, which reports them; false on a socket error (the kernel
// reports it once, so the caller must act on it).
bool read_available(bufferevent* bev, std::size_t max);

}  // namespace wsgate::proxy
