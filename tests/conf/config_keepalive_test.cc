// [[route]] ping_interval / ping_timeout / ping_to and max_message_rate / max_message_burst.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "conf/config_loader.h"

using namespace std::chrono_literals;
using wsgate::conf::load_config_text;
using wsgate::conf::LoadResult;
using wsgate::conf::Route;

namespace {

std::string doc(const std::string& route_keys) {
  return "[[listener]]\naddress = \"127.0.0.1:1\"\n"
         "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
         "[[route]]\nupstream = \"u\"\n" +
         route_keys;
}

std::string error_of(const std::string& route_keys) {
  const LoadResult r = load_config_text(doc(route_keys), "t.toml");
  REQUIRE(r.error);
  return r.error->to_string();
}

}  // namespace

TEST_CASE("route keepalive and rate: off by default") {
  const LoadResult r = load_config_text(doc(""), "t.toml");
  REQUIRE(r.ok());
  const Route& route = r.config->routes[0];
  CHECK(route.ping_interval == 0s);
  CHECK(route.ping_timeout == 10s);
  CHECK(route.ping_to == Route::PingTo::Both);
  CHECK(route.max_message_rate == 0);
  CHECK(route.max_message_burst == 0);
}

TEST_CASE("route keepalive and rate: values are read") {
  const LoadResult r = load_config_text(
      doc("ping_interval = \"500ms\"\nping_timeout = \"2s\"\nping_to = \"client\"\n"
          "max_message_rate = 100\nmax_message_burst = 20\n"),
      "t.toml");
  REQUIRE(r.ok());
  const Route& route = r.config->routes[0];
  CHECK(route.ping_interval == 500ms);
  CHECK(route.ping_timeout == 2s);
  CHECK(route.ping_to == Route::PingTo::Client);
  CHECK(route.max_message_rate == 100);
  CHECK(route.max_message_burst == 20);
  const LoadResult up =
      load_config_text(doc("ping_interval = \"1s\"\nping_to = \"upstream\"\n"), "t.toml");
  REQUIRE(up.ok());
  CHECK(up.config->routes[0].ping_to == Route::PingTo::Upstream);
}

TEST_CASE("route keepalive and rate: bad values are reported at the value") {
  CHECK(
      error_of("ping_interval = \"1s\"\nping_to = \"backend\"\n") ==
      R"(t.toml:9:11: route.ping_to: expected one of: "client", "upstream", "both", got "backend")");
  CHECK(error_of("ping_interval = \"1s\"\nping_timeout = \"0s\"\n") ==
        "t.toml:9:16: route.ping_timeout: expected a duration greater than 0, got \"0s\"");
  CHECK(
      error_of("ping_interval = 5\n") ==
      R"(t.toml:8:17: route.ping_interval: expected a duration like "30s" or "250ms", got integer 5)");
  CHECK(
      error_of("ping_timeout = \"3s\"\n") ==
      "t.toml:8:16: route.ping_timeout: has no effect without route.ping_interval (pings are off)");
  CHECK(error_of("ping_interval = \"0s\"\nping_to = \"client\"\n") ==
        "t.toml:9:11: route.ping_to: has no effect without route.ping_interval (pings are off)");
  CHECK(error_of("idle_timeout = \"30s\"\nping_interval = \"30s\"\n") ==
        "t.toml:9:17: route.ping_interval: must be shorter than route.idle_timeout (30000ms)");
  CHECK(error_of("max_message_rate = -1\n") ==
        "t.toml:8:20: route.max_message_rate: expected an integer in 0..1000000, got integer -1");
  CHECK(error_of("max_message_rate = 10\nmax_message_burst = 0\n") ==
        "t.toml:9:21: route.max_message_burst: expected an integer in 1..10000000, got integer 0");
  CHECK(error_of("max_message_burst = 5\n") ==
        "t.toml:8:21: route.max_message_burst: has no effect without route.max_message_rate");
}
