#include "gateway/takeover_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gateway/upgrade_channel.h"

namespace wsgate::gateway {
namespace {

// Each answer of the old process comes from its main loop: well within this, unless it
// is stuck (and then it should not be relied on for a handover).
constexpr long kAnswerTimeoutSeconds = 10;

}  // namespace

TakeoverClient::~TakeoverClient() {
  if (fd_ >= 0) close(fd_);
}

bool TakeoverClient::fetch(const std::string& path, InheritedSockets& into, std::string& error) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    error = "--takeover " + path + ": not a usable socket path";
    return false;
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    error = "--takeover: cannot connect to " + path + ": " + std::strerror(errno) +
            " (is a wsgate with upgrade_socket = \"" + path + "\" running?)";
    return false;
  }
  const timeval timeout{kAnswerTimeoutSeconds, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string why;
  if (!send_upgrade_message(fd_, "TAKEOVER " + std::to_string(getpid()), -1, why)) {
    error = "--takeover " + path + ": " + why;
    return false;
  }
  for (;;) {
    std::string text;
    int fd = -1;
    const UpgradeReceive r = receive_upgrade_message(fd_, text, fd, why);
    if (r != UpgradeReceive::Message) {
      error = "--takeover " + path + ": " +
              (r == UpgradeReceive::Closed ? std::string("the running wsgate hung up")
               : r == UpgradeReceive::Again
                   ? "no answer within " + std::to_string(kAnswerTimeoutSeconds) + " s"
                   : why);
      return false;
    }
    if (text.rfind("SOCKET ", 0) == 0 && fd >= 0) {
      into.add(fd, "the running wsgate");
      ++count_;
      continue;
    }
    if (fd >= 0) close(fd);
    if (text.rfind("SOCKETS ", 0) == 0) {
      const char* pid = std::strchr(text.c_str() + 8, ' ');
      old_pid_ = pid != nullptr ? static_cast<pid_t>(std::atol(pid + 1)) : 0;
      return true;
    }
    error = "--takeover " + path + ": " +
            (text.rfind("REFUSED ", 0) == 0 ? "the running wsgate refused: " + text.substr(8)
                                            : "unexpected answer \"" + text.substr(0, 64) + "\"");
    return false;
  }
}

bool TakeoverClient::commit(std::string& error) {
  std::string why;
  if (!send_upgrade_message(fd_, "READY", -1, why)) {
    error = "telling the old process (pid " + std::to_string(old_pid_) + "): " + why;
    return false;
  }
  std::string text;
  int fd = -1;
  const UpgradeReceive r = receive_upgrade_message(fd_, text, fd, why);
  if (fd >= 0) close(fd);
  close(fd_);
  fd_ = -1;
  if (r == UpgradeReceive::Message && text == "DONE") return true;
  error = "the old process (pid " + std::to_string(old_pid_) + ") did not confirm: " +
          (r == UpgradeReceive::Closed ? std::string("it hung up")
           : why.empty()               ? text
                                       : why);
  return false;
}

}  // namespace wsgate::gateway
