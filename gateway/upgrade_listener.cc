#include "gateway/upgrade_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gateway/upgrade_channel.h"
#include "metrics/log.h"

namespace wsgate::gateway {
namespace {

// A new process that connected but says nothing (or never READY) is given up on.
constexpr long kSessionTimeoutSeconds = 30;
// Sending the sockets blocks for at most this long (the peer reads as it receives).
constexpr long kSendTimeoutSeconds = 5;

bool unix_address(const std::string& path, sockaddr_un& out) {
  out = {};
  out.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(out.sun_path)) return false;
  std::memcpy(out.sun_path, path.data(), path.size());
  return true;
}

}  // namespace

UpgradeListener::UpgradeListener(event_base* base, Hooks hooks)
    : base_(base), hooks_(std::move(hooks)) {}

UpgradeListener::~UpgradeListener() {
  if (session_fd_ >= 0) end_session("shutting down");
  stop_listening();
}

bool UpgradeListener::listen(const std::string& path, std::string& error) {
  sockaddr_un address{};
  if (!unix_address(path, address)) {
    error = "upgrade_socket " + path + ": path too long";
    return false;
  }
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "upgrade_socket " + path + ": socket: " + std::strerror(errno);
    return false;
  }
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  if (rc != 0 && errno == EADDRINUSE) {
    // A file is there: another wsgate's socket, or one left by a process that died. Only
    // a socket is ever replaced.
    struct stat there {};
    if (lstat(path.c_str(), &there) == 0 && !S_ISSOCK(there.st_mode)) {
      close(fd);
      error = "upgrade_socket " + path + ": exists and is not a socket";
      return false;
    }
    const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const bool answered =
        probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (probe >= 0) close(probe);
    if (answered) {
      close(fd);
      error = "upgrade_socket " + path +
              ": another process listens there (a running wsgate? start this one with "
              "--takeover to replace it)";
      return false;
    }
    unlink(path.c_str());
    rc = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  struct stat st {};
  if (rc != 0 || ::listen(fd, 4) != 0 || stat(path.c_str(), &st) != 0) {
    error = "upgrade_socket " + path + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  chmod(path.c_str(), 0600);  // the peer check below is the real guard
  path_ = path;
  inode_ = st.st_ino;
  listen_fd_ = fd;
  accept_event_.reset(
      event_new(base_, fd, EV_READ | EV_PERSIST, &UpgradeListener::on_accept, this));
  event_add(accept_event_.get(), nullptr);
  return true;
}

void UpgradeListener::stop_listening() {
  accept_event_.reset();
  if (listen_fd_ < 0) return;
  close(listen_fd_);
  listen_fd_ = -1;
  // Only our own file: a new process may already have made its socket at the same path.
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) unlink(path_.c_str());
}

void UpgradeListener::on_accept(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  static_cast<UpgradeListener*>(self)->accept_one();
}

void UpgradeListener::accept_one() {
  // Blocking: the socket list is sent in one go, bounded by SO_SNDTIMEO; reads wait for
  // the loop's readiness event.
  const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  std::string error;
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 ||
      (peer.uid != geteuid() && peer.uid != 0)) {
    log::warn("upgrade_socket: refused a takeover by uid " + std::to_string(peer.uid) +
              " (only this user or root)");
    send_upgrade_message(fd, "REFUSED not the same user", -1, error);
    close(fd);
    return;
  }
  if (session_fd_ >= 0) {
    send_upgrade_message(fd, "REFUSED another takeover is in progress", -1, error);
    close(fd);
    return;
  }
  const timeval send_timeout{kSendTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
  session_fd_ = fd;
  session_pid_ = peer.pid;
  state_ = State::AwaitTakeover;
  session_event_.reset(
      event_new(base_, fd, EV_READ | EV_PERSIST, &UpgradeListener::on_session, this));
  const timeval timeout{kSessionTimeoutSeconds, 0};
  event_add(session_event_.get(), &timeout);
}

void UpgradeListener::on_session(evutil_socket_t /*fd*/, short what, void* self) {
  static_cast<UpgradeListener*>(self)->session_readable(what);
}

void UpgradeListener::session_readable(short what) {
  if ((what & EV_TIMEOUT) != 0) {
    end_session("no answer within " + std::to_string(kSessionTimeoutSeconds) + " s");
    return;
  }
  std::string text;
  std::string error;
  int fd = -1;
  const UpgradeReceive r = receive_upgrade_message(session_fd_, text, fd, error);
  if (fd >= 0) close(fd);  // the new process has nothing to pass
  if (r == UpgradeReceive::Again) return;
  if (r == UpgradeReceive::Closed) {
    if (state_ == State::AwaitTakeover) {
      // A peer that asked nothing (e.g. a wsgate checking whether this socket is live).
      end_session({});
      return;
    }
    end_session("the new process went away before it was ready");
    return;
  }
  if (r == UpgradeReceive::Failed) {
    end_session(error);
    return;
  }
  if (state_ == State::AwaitTakeover && text.rfind("TAKEOVER ", 0) == 0) {
    send_sockets(session_pid_);
    return;
  }
  if (state_ == State::AwaitReady && text == "READY") {
    const pid_t pid = session_pid_;
    // The path goes first: the new process makes its own socket there after DONE.
    stop_listening();
    hooks_.handed_over(pid);
    send_upgrade_message(session_fd_, "DONE", -1, error);
    session_event_.reset();
    close(session_fd_);
    session_fd_ = -1;
    return;
  }
  end_session("unexpected message \"" + text.substr(0, 64) + "\"");
}

void UpgradeListener::send_sockets(pid_t pid) {
  std::string error;
  std::string why = hooks_.refusal();
  if (!why.empty()) {
    log::warn("upgrade_socket: takeover by pid " + std::to_string(pid) + " refused: " + why);
    send_upgrade_message(session_fd_, "REFUSED " + why, -1, error);
    end_session({});
    return;
  }
  std::vector<HandedSocket> sockets = hooks_.sockets(why);
  bool sent = !sockets.empty();
  if (sockets.empty()) {
    send_upgrade_message(session_fd_, "REFUSED " + why, -1, error);
  }
  for (HandedSocket& s : sockets) {
    if (sent &&
        !send_upgrade_message(session_fd_, "SOCKET " + s.kind + " " + s.address, s.fd, error))
      sent = false;
    close(s.fd);
  }
  if (sent)
    sent = send_upgrade_message(
        session_fd_, "SOCKETS " + std::to_string(sockets.size()) + " " + std::to_string(getpid()),
        -1, error);
  if (!sent) {
    end_session(why.empty() ? "sending the sockets failed: " + error : why);
    return;
  }
  log::info("upgrade_socket: handed " + std::to_string(sockets.size()) +
            " listening socket(s) to pid " + std::to_string(pid) +
            "; still accepting until it is ready");
  state_ = State::AwaitReady;
}

void UpgradeListener::end_session(std::string_view why) {
  if (!why.empty())
    log::warn("upgrade_socket: takeover by pid " + std::to_string(session_pid_) + " abandoned (" +
              std::string(why) + "); this process keeps serving");
  session_event_.reset();
  if (session_fd_ >= 0) close(session_fd_);
  session_fd_ = -1;
  state_ = State::AwaitTakeover;
}

}  // namespace wsgate::gateway
