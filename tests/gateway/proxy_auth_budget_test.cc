// The per-worker PBKDF2 budget of proxy authentication (gateway/proxy_auth.h).
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "gateway/proxy_auth.h"
#include "proxy/password_hash.h"

using namespace wsgate;
using std::chrono::milliseconds;

TEST_CASE("proxy auth budget: a burst of kVerificationsPerSecond, then refilled over time") {
  gateway::VerificationBudget budget;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < gateway::kVerificationsPerSecond; ++i) CHECK(budget.take(t0));
  CHECK_FALSE(budget.take(t0));
  CHECK_FALSE(budget.take(t0 + milliseconds(1000 / gateway::kVerificationsPerSecond / 2)));
  CHECK(budget.take(t0 + milliseconds(1000 / gateway::kVerificationsPerSecond + 1)));
  CHECK_FALSE(budget.take(t0 + milliseconds(1000 / gateway::kVerificationsPerSecond + 1)));
  // A long pause refills up to the burst size, not beyond.
  const auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < gateway::kVerificationsPerSecond; ++i) CHECK(budget.take(later));
  CHECK_FALSE(budget.take(later));
}

TEST_CASE("proxy auth: wrong passwords beyond the budget get 503, cached credentials pass") {
  // Runs on its own thread: the budget and the cache are per thread (per worker).
  std::thread([] {
    const std::vector<conf::ConnectUser> users = {{"dave", proxy::hash_password("pw", 1000), {}}};
    const auto check = [&](std::string_view header) {
      return gateway::check_proxy_authorization(users, &header);
    };
    const std::string_view good = "Basic ZGF2ZTpwdw==";   // dave:pw
    const std::string_view wrong = "Basic ZGF2ZTpubw==";  // dave:no
    const std::string_view nobody = "Basic ZXZlOnB3";     // eve:pw (unknown user)
    CHECK(check(good).ok);                                // verified once: cached from now on
    int refused_503 = 0;
    int refused_407 = 0;
    for (int i = 0; i < 3 * gateway::kVerificationsPerSecond; ++i) {
      const gateway::ProxyAuthResult r = check(i % 2 == 0 ? wrong : nobody);
      CHECK_FALSE(r.ok);
      (r.status == 503 ? refused_503 : refused_407) += 1;
    }
    CHECK(refused_407 >= gateway::kVerificationsPerSecond - 1);
    CHECK(refused_503 > 0);
    CHECK(check(good).ok);  // the cache still answers while the budget is spent
  }).join();
}
