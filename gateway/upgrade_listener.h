// The running process's side of a binary upgrade: listens on `upgrade_socket` and, when
// a new wsgate asks (gateway/upgrade_channel.h has the conversation), hands it a
// duplicate of every listening socket, then retires once the new process says it
// accepts on them. One takeover at a time; only a peer of the same user (or root), by
// SO_PEERCRED, and the socket file is mode 0600. Main thread, on the Server's loop.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

class UpgradeListener {
 public:
  struct HandedSocket {
    std::string kind;     // "listener" or "admin"
    std::string address;  // "host:port", for the log and the new process's log
    int fd = -1;          // a duplicate, closed by the listener once sent
  };
  struct Hooks {
    // "" when a takeover may start; otherwise why not (it is answered REFUSED).
    std::function<std::string()> refusal;
    // Duplicates of the listening sockets (all workers', and the admin listener's).
    // Empty with `error` set when they cannot be gathered.
    std::function<std::vector<HandedSocket>(std::string& error)> sockets;
    // The new process (`pid`) accepts on the sockets: stop accepting, let connections run.
    std::function<void(pid_t pid)> handed_over;
  };

  UpgradeListener(event_base* base, Hooks hooks);
  ~UpgradeListener();  // stops listening; removes the socket file if it is still ours
  UpgradeListener(const UpgradeListener&) = delete;
  UpgradeListener& operator=(const UpgradeListener&) = delete;

  // Creates the socket file at `path`. A stale file (no process listening) is replaced;
  // one where a process answers is an error.
  bool listen(const std::string& path, std::string& error);

 private:
  enum class State { AwaitTakeover, AwaitReady };
  static void on_accept(evutil_socket_t fd, short what, void* self);
  static void on_session(evutil_socket_t fd, short what, void* self);
  void accept_one();
  void session_readable(short what);
  void send_sockets(pid_t pid);
  void end_session(std::string_view why);
  void stop_listening();

  event_base* base_;
  Hooks hooks_;
  std::string path_;
  ino_t inode_ = 0;  // of the socket file made by listen(), so only that one is removed
  int listen_fd_ = -1;
  EventPtr accept_event_;
  int session_fd_ = -1;  // the takeover in progress, if any
  pid_t session_pid_ = 0;
  State state_ = State::AwaitTakeover;
  EventPtr session_event_;
};

}  // namespace wsgate::gateway
