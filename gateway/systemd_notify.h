// The systemd notification protocol (sd_notify(3)), written by hand: one datagram of
// "KEY=value" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" in
// the abstract namespace). With Type=notify in the unit, systemd starts ordering
// dependents after READY=1, shows STATUS= in `systemctl status`, and tracks
// RELOADING=1 ... READY=1 and STOPPING=1. Without $NOTIFY_SOCKET (not under systemd)
// every call is a no-op. A datagram that cannot be sent is dropped: the gateway never
// waits for systemd. Main thread only.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>

namespace wsgate::gateway {

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET; inactive when it is unset, empty or not a usable address.
  SystemdNotifier();
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool active() const { return fd_ >= 0; }
  // Sends `state` ("READY=1\nSTATUS=...") as one datagram; false when inactive or the
  // send failed.
  bool notify(std::string_view state);

  // The messages wsgate sends, for the Server (gateway/server.cc).
  bool ready(std::string_view status);
  bool reloading();  // RELOADING=1 with MONOTONIC_USEC (systemd.service(5), Type=notify-reload)
  bool status(std::string_view status);
  bool stopping(std::string_view status);

 private:
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_length_ = 0;
};

// A STATUS= value: one line (CR and LF become spaces).
std::string status_line(std::string_view text);

}  // namespace wsgate::gateway
