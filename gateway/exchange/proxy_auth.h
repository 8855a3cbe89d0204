// Proxy authentication of CONNECT requests: Proxy-Authorization: Basic (RFC 9110 11.7.1,
// RFC 7617) against the [[connect.user]] list. 407 with Proxy-Authenticate when missing
// or wrong. The header's value is never logged or forwarded.
//
// PBKDF2 costs milliseconds of the worker's loop, so each worker thread keeps a small
// bounded cache of credentials it has verified: keyed by SHA-256 of (stored hash, user,
// password), never the plaintext; a changed hash in a reloaded config misses the cache.
// Failed attempts are not cached (each costs one PBKDF2).
//
// One PBKDF2 run (100,000 iterations) costs tens of milliseconds of the worker's loop, so
// wrong passwords sent in a flood could stall every connection on that worker. Each
// worker therefore spends at most kVerificationShare of its time in PBKDF2 (measured as the
// thread's CPU time, so it holds whatever the iterations, the CPU and the other load on
// the machine: time the thread waits for a core is not PBKDF2's); beyond that a request whose
// credentials are not in the cache gets 503 with Retry-After, while cached (already verified)
// credentials keep working. An unknown user name costs one run against a dummy hash as
// well, with the iteration count most of the configured users have (dummy_hash()), so
// timing does not tell which user names exist.
//
// In front of the worker's budget each client (by IP address; IPv6 by its /64, what one
// host usually gets) has its own, smaller one (kClientShare, kClientBurstSeconds), so a
// flood of wrong passwords from one client gets 503 from its own budget while another
// client's first attempt is still verified. The per-client budgets sit in a table of at
// most kClientEntries per worker; the least recently used entry makes room (a forgotten
// client starts again with a full burst, which the worker budget still bounds).
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

// ok(): `value` is the authenticated user name. Otherwise the refusal to answer with: 407
// with Proxy-Authenticate (RFC 9110 15.5.8), or 503 with Retry-After (RFC 9110 10.2.3)
// when a verification budget is spent; the reason never echoes the credentials.
using ProxyAuthResult = http::Checked<std::string>;

// The share of a worker's time PBKDF2 may take, and the burst (seconds of PBKDF2) an
// idle worker allows at once.
inline constexpr double kVerificationShare = 0.25;
inline constexpr double kVerificationBurstSeconds = 0.25;
// The same for one client: a fifth of the worker's share; a burst that leaves the
// worker 0.2 s of its own for the other clients.
inline constexpr double kClientShare = 0.05;
inline constexpr double kClientBurstSeconds = 0.05;
inline constexpr std::size_t kClientEntries = 1024;

// Credit in seconds of PBKDF2 time: refilled at kVerificationShare per second up to the
// burst; a verification may start while the credit is positive and is charged what it
// took.
class VerificationBudget {
 public:
  using Clock = std::chrono::steady_clock;
  explicit VerificationBudget(double share = kVerificationShare,
                              double burst = kVerificationBurstSeconds)
      : share_(share), burst_(burst), credit_(burst) {}
  bool may_start(Clock::time_point now);
  void charge(Clock::duration spent);

 private:
  double share_;
  double burst_;
  double credit_;
  Clock::time_point last_{};
};

// What one worker thread remembers between verifications: the credentials it verified
// (a bounded cache of SHA-256 keys), its PBKDF2 budget, and the clocks: `now` (steady)
// refills the budget, the thread's CPU time charges it. Each worker uses its thread's own
// (for_this_thread); a test makes one with a clock it steps, which then does both, so
// that a verification costs the same on any machine.
class ProxyAuthState {
 public:
  using Clock = VerificationBudget::Clock;
  using Now = std::function<Clock::time_point()>;
  using Digest = std::array<unsigned char, 32>;  // SHA-256

  ProxyAuthState() : now_(&Clock::now), charge_cpu_time_(true) {}
  explicit ProxyAuthState(Now now) : now_(std::move(now)) {}
  static ProxyAuthState& for_this_thread();

  bool cached(const Digest& key) const;
  void remember(const Digest& key);
  VerificationBudget& budget() { return budget_; }
  // The budget of the client at `client_ip` (made on first use, most recently used now).
  VerificationBudget& client_budget(std::string_view client_ip);
  std::size_t client_entries() const { return clients_.size(); }
  Clock::time_point now() const { return now_(); }
  // What a verification is charged: the thread's CPU time between the two readings, or,
  // with a test's clock, that clock's.
  struct Stopwatch {
    Clock::time_point wall;
    Clock::duration cpu;
  };
  Stopwatch start() const;
  Clock::duration elapsed(const Stopwatch& since) const;

 private:
  static constexpr std::size_t kCacheEntries = 64;
  std::array<Digest, kCacheEntries> entries_{};
  std::size_t used_ = 0;
  std::size_t next_ = 0;  // replaced next, round robin
  VerificationBudget budget_;
  // Least recently used first; the index finds a client's entry.
  std::list<std::pair<std::string, VerificationBudget>> clients_;
  std::unordered_map<std::string, decltype(clients_)::iterator> client_index_;
  Now now_;
  bool charge_cpu_time_ = false;
};

// The hash an unknown user name is verified against: the iteration count most configured
// users have (the highest among equally common ones; the default without users).
std::string dummy_hash(const std::vector<conf::ConnectUser>& users);

// `header`: the Proxy-Authorization value, or null when absent. `client_ip`: the
// client's address (no port), whose own budget is charged.
ProxyAuthResult check_proxy_authorization(
    const std::vector<conf::ConnectUser>& users, const std::string_view* header,
    std::string_view client_ip, ProxyAuthState& state = ProxyAuthState::for_this_thread());

inline constexpr std::string_view kProxyAuthenticate = R"(Basic realm="wsgate", charset="UTF-8")";

}  // namespace wsgate::gateway
