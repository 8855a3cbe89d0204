// The new process's side of a binary upgrade (`wsgate -c FILE --takeover [PATH]`; the
// conversation is in gateway/upgrade_channel.h): connects to the running wsgate's
// upgrade_socket, receives its listening sockets, and once this process accepts on them
// tells the old one, which then stops accepting. Main thread, at start; blocking, each
// step bounded in time.
#pragma once

#include <sys/types.h>

#include <string>

#include "gateway/inherited_sockets.h"

namespace wsgate::gateway {

class TakeoverClient {
 public:
  TakeoverClient() = default;
  ~TakeoverClient();  // a takeover never committed is abandoned: the old process goes on
  TakeoverClient(const TakeoverClient&) = delete;
  TakeoverClient& operator=(const TakeoverClient&) = delete;

  // Connects to `path` and adds every socket the old process sends (its listeners' and
  // its admin listener's) to `into`. False with `error` saying why: nothing there,
  // refused, or the conversation failed.
  bool fetch(const std::string& path, InheritedSockets& into, std::string& error);
  // This process accepts on the sockets: the old one stops accepting. Waits (bounded)
  // for its DONE; false with `error` when it did not confirm.
  bool commit(std::string& error);
  pid_t old_pid() const { return old_pid_; }
  std::size_t socket_count() const { return count_; }

 private:
  int fd_ = -1;
  pid_t old_pid_ = 0;
  std::size_t count_ = 0;
};

}  // namespace wsgate::gateway
