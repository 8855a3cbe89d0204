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
  // Its own thread: the budget and the cache are per thread (per worker). 100,000
  // iterations, as deployed: the burst covers a few checks only.
  std::thread([] {
    const std::vector<conf::ConnectUser> users = {{"dave", proxy::hash_password("pw"), {}}};
    const auto check = [&](std::string_view header) {
      return gateway::check_proxy_authorization(users, &header);
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
    CHECK(refused_407 >= 1);
    CHECK(refused_503 > 20);
    CHECK(check(good).ok);  // the cache still answers while the budget is spent
  }).join();
}
