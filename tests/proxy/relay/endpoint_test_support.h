// What the tests of the socket-backed Endpoints (SocketEndpoint, TlsSocketEndpoint) share:
// a recorder of the events an endpoint reports, an evbuffer's bytes as a string, and one
// non-blocking turn of the event loop.
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>

#include <string>

#include "proxy/relay/endpoint.h"

namespace wsgate::test {

struct Recorder final : proxy::EndpointEvents {
  int readable = 0, drained = 0, eof = 0, error = 0;
  void on_readable(proxy::Endpoint& /*from*/) override { ++readable; }
  void on_drained(proxy::Endpoint& /*to*/) override { ++drained; }
  void on_eof(proxy::Endpoint& /*from*/) override { ++eof; }
  void on_error(proxy::Endpoint& /*from*/) override { ++error; }
};

inline std::string text(evbuffer* b) {
  std::string s(evbuffer_get_length(b), '\0');
  evbuffer_copyout(b, s.data(), s.size());
  return s;
}

inline void loop_once(event_base* base) {
  event_base_loop(base, EVLOOP_NONBLOCK);
}

}  // namespace wsgate::test
