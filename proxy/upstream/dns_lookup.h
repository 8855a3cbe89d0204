// One asynchronous name lookup (evdns_getaddrinfo) whose owner may go away first.
//
// libevent reports a cancelled lookup later, from the loop: a deferred callback with
// EVUTIL_EAI_CANCEL. Its argument must therefore outlive the owner that cancelled. Here
// that argument is a small token, which the callback frees; cancel() (and the destructor)
// only unhook the owner from it, so the late callback touches nothing else.
//
// Ownership: owned by the object that wants the answer; destroyed on the loop's thread.
// A token cancelled just before its loop stops for good is freed only if the loop turns
// once more (gateway/server.cc does at exit).
#pragma once

#include <event2/dns.h>
#include <event2/util.h>

#include <functional>

namespace wsgate::proxy {

class DnsLookup {
 public:
  // `result`: 0 or an EVUTIL_EAI_* error; `answer` (may be null) is freed after `done`
  // returns. `done` may destroy the DnsLookup.
  using Done = std::function<void(int result, const evutil_addrinfo* answer)>;

  DnsLookup() = default;
  ~DnsLookup() { cancel(); }
  DnsLookup(const DnsLookup&) = delete;
  DnsLookup& operator=(const DnsLookup&) = delete;

  // Starts a lookup of `host` (A and AAAA as `hints` ask), cancelling one in flight.
  // `done` may run before start() returns (a name from /etc/hosts, an error).
  void start(evdns_base* dns, const char* host, const evutil_addrinfo& hints, Done done);
  // `done` will not run. No-op when nothing is in flight.
  void cancel();
  bool in_flight() const { return token_ != nullptr; }

 private:
  struct Token {
    DnsLookup* owner = nullptr;  // null once cancelled
    evdns_getaddrinfo_request* request = nullptr;
  };
  static void on_answer(int result, evutil_addrinfo* answer, void* arg);

  Token* token_ = nullptr;  // while a lookup is in flight; freed by on_answer
  Done done_;
};

}  // namespace wsgate::proxy
