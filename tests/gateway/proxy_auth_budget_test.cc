// The per-worker PBKDF2 budget of proxy authentication (gateway/proxy_auth.h).
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "gateway/proxy_auth.h"
#include "proxy/password_hash.h"

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
  const auto check = [&](std::string_view header) {
    return gateway::check_proxy_authorization(users, &header, state);
  };
  const std::string_view good = "Basic ZGF2ZTpwdw==";   // dave:pw
  const std::string_view wrong = "Basic ZGF2ZTpubw==";  // dave:no
  const std::string_view nobody = "Basic ZXZlOnB3";     // eve:pw (unknown user)
  CHECK(check(good).ok);                                // verified once: cached from now on
  int refused_503 = 0;
  int refused_407 = 0;
  for (int i = 0; i < 40; ++i) {
    const gateway::ProxyAuthResult r = check(i % 2 == 0 ? wrong : nobody);
    CHECK_FALSE(r.ok);
    (r.status == 503 ? refused_503 : refused_407) += 1;
  }
  // 250 ms of burst; each verification costs 40 ms and refills 20 ms (a quarter of the
  // 80 ms between two of them): about 10 verified at once, then one in about three as the
  // 503s (one 40 ms clock reading each, 10 ms of refill) bring the credit back. Without a
  // budget all 40 would be verified; with no refill only the first 6.
  CHECK(refused_407 >= 15);
  CHECK(refused_407 <= 25);
  CHECK(refused_503 >= 15);
  CHECK(check(good).ok);  // the cache still answers while the budget is spent
  // A pause refills the budget: wrong passwords are verified (407) again.
  fake_now += std::chrono::seconds(10);
  const gateway::ProxyAuthResult after_pause = check(wrong);
  CHECK_FALSE(after_pause.ok);
  CHECK(after_pause.status == 407);
}

TEST_CASE("proxy auth: each worker thread has its own state") {
  gateway::ProxyAuthState* main_state = &gateway::ProxyAuthState::for_this_thread();
  gateway::ProxyAuthState* other_state = nullptr;
  std::thread([&] { other_state = &gateway::ProxyAuthState::for_this_thread(); }).join();
  CHECK(main_state != other_state);
  CHECK(main_state == &gateway::ProxyAuthState::for_this_thread());
}
