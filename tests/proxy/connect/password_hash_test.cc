// Proxy users' password hashes (proxy/connect/password_hash.cc) and the Basic check
// (gateway/exchange/proxy_auth.cc).
#include "proxy/connect/password_hash.h"

#include <doctest/doctest.h>

#include "conf/config_connect.h"
#include "gateway/exchange/proxy_auth.h"

using namespace wsgate;

TEST_CASE("password hash: round trip, salted, constant form") {
  const std::string a = proxy::hash_password("s3cret", 1000);
  const std::string b = proxy::hash_password("s3cret", 1000);
  CHECK(a != b);  // a fresh salt each time
  CHECK(conf::detail::is_password_hash(a));
  CHECK(proxy::verify_password(a, "s3cret"));
  CHECK(proxy::verify_password(b, "s3cret"));
  CHECK_FALSE(proxy::verify_password(a, "s3creT"));
  CHECK_FALSE(proxy::verify_password(a, ""));
  CHECK_FALSE(proxy::verify_password("pbkdf2-sha256$1000$!!$??", "s3cret"));
  CHECK_FALSE(proxy::verify_password("plain", "plain"));
}

TEST_CASE("proxy auth: Basic credentials against the users") {
  std::vector<conf::ConnectUser> users = {
      {"alice", proxy::hash_password("pw:with:colons", 1000), {}}};
  const auto check = [&](const char* header) {
    const std::string_view v(header);
    return gateway::check_proxy_authorization(users, &v, "192.0.2.1");
  };
  const auto missing = gateway::check_proxy_authorization(users, nullptr, "192.0.2.1");
  CHECK_FALSE(missing.ok());
  // RFC 9110 15.5.8: the 407 names the scheme to use.
  CHECK(missing.refusal.status == 407);
  REQUIRE(missing.refusal.fields.size() == 1);
  CHECK(missing.refusal.fields[0].first == "Proxy-Authenticate");
  // "alice:pw:with:colons"
  const auto ok = check("Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM=");
  CHECK(ok.ok());
  CHECK(ok.value == "alice");
  CHECK(check("basic  YWxpY2U6cHc6d2l0aDpjb2xvbnM=").ok());  // scheme is case-insensitive
  CHECK(check("Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM=").ok());   // cached now: same answer
  CHECK_FALSE(check("Basic YWxpY2U6d3Jvbmc=").ok());         // alice:wrong
  CHECK_FALSE(check("Basic Ym9iOnB3").ok());                 // bob:pw
  CHECK_FALSE(check("Bearer abc").ok());
  CHECK_FALSE(check("Basic !!!!").ok());
  CHECK_FALSE(check("Basic YWxpY2U=").ok());  // "alice": no colon
  // A changed hash (config reload) misses the cache.
  users[0].password_hash = proxy::hash_password("other", 1000);
  CHECK_FALSE(check("Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM=").ok());
}
