// The binary upgrade's conversation (docs/operations.md, "Binary upgrade"): a new wsgate
// (gateway/takeover_client.h) connects to the running one's upgrade_socket
// (gateway/upgrade_listener.h), an AF_UNIX SOCK_SEQPACKET socket, so every message keeps
// its boundary and carries at most one descriptor (SCM_RIGHTS, unix(7)):
//
//   new -> old   TAKEOVER <pid>
//   old -> new   SOCKET listener <host:port>   + fd     one per listening socket
//                SOCKET admin <host:port>      + fd     the admin listener, if any
//                SOCKETS <count> <pid>                  the end of the list
//            or  REFUSED <why>                          (draining, another takeover ...)
//   new -> old   READY                                  the new process accepts on them
//   old -> new   DONE                                   the old one stopped accepting
//
// Until READY the old process changes nothing: a new process that fails (or closes the
// connection) leaves it running as it was.
#pragma once

#include <string>
#include <string_view>

namespace wsgate::gateway {

inline constexpr std::size_t kUpgradeMessageMax = 512;

// Sends `text` with `fd` attached (-1: none). False with `error` set on failure.
bool send_upgrade_message(int sock, std::string_view text, int fd, std::string& error);

enum class UpgradeReceive { Message, Closed, Again, Failed };
// Receives one message into `text`; `fd` is the descriptor it carried (close-on-exec,
// owned by the caller) or -1. Closed: the peer hung up; Again: nothing yet (non-blocking
// socket); Failed: `error` says why.
UpgradeReceive receive_upgrade_message(int sock, std::string& text, int& fd, std::string& error);

}  // namespace wsgate::gateway
