// Listening sockets this process did not open itself: those systemd passed (socket
// activation, sd_listen_fds(3)) and those a running wsgate handed over in a binary
// upgrade (gateway/takeover_client.h). A listener whose address matches one uses it
// instead of binding; the match is by the socket's own address (getsockname), so the
// order or names of the passed sockets do not matter. Main thread, at start only.
#pragma once

#include <string>
#include <vector>

#include "conf/address.h"

namespace wsgate::gateway {

class InheritedSockets {
 public:
  InheritedSockets() = default;
  ~InheritedSockets();  // closes what no listener took
  InheritedSockets(const InheritedSockets&) = delete;
  InheritedSockets& operator=(const InheritedSockets&) = delete;

  // Takes ownership of `fd`, made non-blocking and close-on-exec; `origin` ("systemd",
  // "pid 1234") names it in the log.
  void add(int fd, std::string origin);
  bool empty() const { return entries_.empty(); }

  // The sockets for `address`, one list per worker, each fd owned by the caller; empty
  // when none was inherited. Every inherited socket of that address goes to some worker
  // (a worker may get several): closing one would reset the connections queued in it.
  // A worker left without one gets a dup() of one, sharing its accept queue, so nothing
  // of an inherited address is ever bound again.
  std::vector<std::vector<int>> take(const conf::HostPort& address, unsigned workers);
  // One socket for `address` (the admin listener), or -1; further sockets of that
  // address are closed.
  int take_one(const conf::HostPort& address);
  // Closes, with a log line each, the sockets no listener took (an address the config
  // does not have any more).
  void close_unused();

 private:
  struct Entry {
    int fd;
    std::string origin;
  };
  std::vector<Entry> entries_;
};

// sd_listen_fds(3), by hand: when $LISTEN_PID is this process, the $LISTEN_FDS
// descriptors systemd passed from fd 3 on; otherwise none. The variables are unset
// either way (as sd_listen_fds(1) does), so that no child sees them.
std::vector<int> systemd_listen_fds();

}  // namespace wsgate::gateway
