// Opens the listening sockets: one per (worker, [[listener]]), all with SO_REUSEPORT so
// the kernel spreads new connections across workers without a shared accept lock.
#pragma once

#include <sys/socket.h>

#include <string>

#include "conf/address.h"
#include "conf/config.h"

namespace wsgate::gateway {

// Returns the listening fd (non-blocking, close-on-exec), or -1 with `error` set to a
// message naming the address and the system error (e.g. "address already in use").
// `reuse_port`: SO_REUSEPORT, so that each worker has a socket of its own on the address;
// without it a second process cannot bind it (the admin server's socket).
int open_listen_socket(const conf::HostPort& address, std::string& error, bool reuse_port = true);

// Whether `fd` is a listening TCP socket bound to exactly `address` (same family, IP and
// port): how inherited sockets (systemd, a binary upgrade) are matched to listeners.
bool is_listening_on(int fd, const conf::HostPort& address);

}  // namespace wsgate::gateway
