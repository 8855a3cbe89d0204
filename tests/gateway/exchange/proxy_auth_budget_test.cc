// The per-worker PBKDF2 budget of proxy authentication (gateway/exchange/proxy_auth.h).
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "gateway/exchange/proxy_auth.h"
#include "proxy/connect/password_hash.h"

using namespace wsgate;
using std::chrono::milliseconds;

TEST_CASE("proxy auth budget: a burst, then kVerificationShare of the time") {
  gateway::VerificationBudget budget;
  const auto t0 = gateway::VerificationBudget::Clock::now();
  CHECK(budget.may_start(t0));
  budget.charge(milliseconds(200));
  CHECK(budget.may_start(t0));  // 50 ms of credit left
  budget.charge(milliseconds(100));
  CHECK_FALSE(budget.may_start(t0));  // 50 ms in debt
  // 0.1 s later: 25 ms refilled, still in debt; 0.4 s later: 50 ms of credit.
  CHECK_FALSE(budget.may_start(t0 + milliseconds(100)));
  CHECK(budget.may_start(t0 + milliseconds(400)));
  // A long pause refills up to the burst, not beyond.
  CHECK(budget.may_start(t0 + std::chrono::seconds(60)));
  budget.charge(milliseconds(260));
  CHECK_FALSE(budget.may_start(t0 + std::chrono::seconds(60)));
}

TEST_CASE("proxy auth: wrong passwords beyond the budget get 503, cached credentials pass") {
  // The budget is charged by the state's clock, which this test steps by 40 ms at every
  // reading: each verification costs 40 ms whatever the machine (and a sanitizer) takes
  // for its PBKDF2, so the counts below are the same everywhere.
  using Clock = gateway::ProxyAuthState::Clock;
  auto fake_now = Clock::time_point{} + std::chrono::hours(1);
  gateway::ProxyAuthState state([&] { return fake_now += milliseconds(40); });
  const std::vector<conf::ConnectUser> users = {{"dave", proxy::hash_password("pw", 1000), {}}};
  // Every attempt from another client: this test is about the worker's budget alone.
  int client = 0;
  const auto check = [&](std::string_view header) {
    const std::string ip =
        "10.0." + std::to_string(client / 250) + "." + std::to_string(client % 250 + 1);
    ++client;
    return gateway::check_proxy_authorization(users, &header, ip, state);
  };
  const std::string_view good = "Basic ZGF2ZTpwdw==";   // dave:pw
  const std::string_view wrong = "Basic ZGF2ZTpubw==";  // dave:no
  const std::string_view nobody = "Basic ZXZlOnB3";     // eve:pw (unknown user)
  CHECK(check(good).ok());                              // verified once: cached from now on
  int refused_503 = 0;
  int refused_407 = 0;
  for (int i = 0; i < 40; ++i) {
    const gateway::ProxyAuthResult r = check(i % 2 == 0 ? wrong : nobody);
    CHECK_FALSE(r.ok());
    (r.refusal.status == 503 ? refused_503 : refused_407) += 1;
  }
  // 250 ms of burst; each verification costs 40 ms and refills 20 ms (a quarter of the
  // 80 ms between two of them): about 10 verified at once, then one in about three as the
  // 503s (one 40 ms clock reading each, 10 ms of refill) bring the credit back. Without a
  // budget all 40 would be verified; with no refill only the first 6.
  CHECK(refused_407 >= 15);
  CHECK(refused_407 <= 25);
  CHECK(refused_503 >= 15);
  CHECK(check(good).ok());  // the cache still answers while the budget is spent
  // A pause refills the budget: wrong passwords are verified (407) again.
  fake_now += std::chrono::seconds(10);
  const gateway::ProxyAuthResult after_pause = check(wrong);
  CHECK_FALSE(after_pause.ok());
  CHECK(after_pause.refusal.status == 407);
}

TEST_CASE("proxy auth: each worker thread has its own state") {
  gateway::ProxyAuthState* main_state = &gateway::ProxyAuthState::for_this_thread();
  gateway::ProxyAuthState* other_state = nullptr;
  std::thread([&] { other_state = &gateway::ProxyAuthState::for_this_thread(); }).join();
  CHECK(main_state != other_state);
  CHECK(main_state == &gateway::ProxyAuthState::for_this_thread());
}

TEST_CASE("proxy auth: one client's flood spends its own budget, not another client's") {
  // Issue 14 item 9. The same stepped clock: each verification costs 40 ms.
  using Clock = gateway::ProxyAuthState::Clock;
  auto fake_now = Clock::time_point{} + std::chrono::hours(1);
  gateway::ProxyAuthState state([&] { return fake_now += milliseconds(40); });
  const std::vector<conf::ConnectUser> users = {{"dave", proxy::hash_password("pw", 1000), {}}};
  const auto check = [&](std::string_view header, std::string_view ip) {
    return gateway::check_proxy_authorization(users, &header, ip, state);
  };
  const std::string_view good = "Basic ZGF2ZTpwdw==";   // dave:pw
  const std::string_view wrong = "Basic ZGF2ZTpubw==";  // dave:no
  CHECK(check(good, "192.0.2.9").ok());                 // cached from now on
  int verified = 0;
  for (int i = 0; i < 100; ++i) {
    const gateway::ProxyAuthResult r = check(wrong, "192.0.2.1");
    CHECK_FALSE(r.ok());
    if (r.refusal.status == 407) ++verified;
    if (r.refusal.status == 503)
      CHECK(r.refusal.reason.find("from this client") != std::string::npos);
  }
  // 50 ms of client burst (2 verifications), then 5% of the time: each 503 reads the
  // clock once (40 ms, 2 ms of refill), so one more every ~20 attempts: about 7 of the
  // 100, where the worker's budget alone would verify 10 at once and then one in three.
  CHECK(verified >= 2);
  CHECK(verified <= 9);
  // Another client's first attempts are verified: the worker budget was hardly touched.
  for (const char* other : {"192.0.2.2", "192.0.2.3", "2001:db8::1"}) {
    const gateway::ProxyAuthResult r = check(wrong, other);
    INFO(other, " ", r.refusal.reason);
    CHECK(r.refusal.status == 407);
  }
  // The same /64 is the same client: 2001:db8::1 spends the budget 2001:db8::2 would use.
  for (int i = 0; i < 3; ++i) check(wrong, "2001:db8::1");
  CHECK(check(wrong, "2001:db8::2").refusal.status == 503);
  CHECK(check(wrong, "2001:db8:0:1::2").refusal.status == 407);
  // Cached credentials pass whatever the client's budget says.
  CHECK(check(good, "192.0.2.1").ok());
}

TEST_CASE("proxy auth: the client table is bounded, least recently used first out") {
  gateway::ProxyAuthState state;
  for (int i = 0; i < 3000; ++i)
    state.client_budget("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) +
                        "." + std::to_string(i % 256));
  CHECK(state.client_entries() == gateway::kClientEntries);
}

TEST_CASE("proxy auth: an unknown user costs what the configured users cost") {
  // The dummy hash has the iteration count most users have, not a fixed 100,000.
  const std::vector<conf::ConnectUser> users = {{"a", proxy::hash_password("x", 2000), {}},
                                                {"b", proxy::hash_password("y", 2000), {}},
                                                {"c", proxy::hash_password("z", 3000), {}}};
  CHECK(proxy::hash_iterations(gateway::dummy_hash(users)) == 2000);
  CHECK(proxy::hash_iterations(gateway::dummy_hash({})) == proxy::kDefaultPbkdf2Iterations);
  // In time too: the fastest of five runs each, known user (wrong password) vs unknown.
  // A 100,000-iteration dummy would take ~50 times as long as these 2,000-iteration runs.
  const auto fastest = [&](std::string_view header) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int i = 0; i < 5; ++i) {
      gateway::ProxyAuthState fresh;  // full budgets every time
      const auto t0 = std::chrono::steady_clock::now();
      CHECK(gateway::check_proxy_authorization(users, &header, "192.0.2.1", fresh).refusal.status ==
            407);
      best = std::min(best, std::chrono::steady_clock::now() - t0);
    }
    return best;
  };
  const auto known = fastest("Basic YTpubw==");    // a:no
  const auto unknown = fastest("Basic enp6Om5v");  // zzz:no
  CHECK(unknown < known * 5);
  CHECK(known < unknown * 5);
}
