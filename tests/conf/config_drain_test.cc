// drain_spread, upgrade_socket and upgrade_deadline (top level) and [upstream.rebalance]
// (conf/config_rebalance.cc): defaults, values, and errors at the position of the value at
// fault.
#include <doctest/doctest.h>

#include <string>

#include "conf/config_loader.h"

using namespace std::chrono_literals;
using namespace wsgate::conf;

namespace {

std::string doc(const std::string& top, const std::string& upstream_extra = "") {
  return top +
         "\n[[listener]]\naddress = \"127.0.0.1:8080\"\n"
         "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:1\"]\n" +
         upstream_extra + "\n[[route]]\nupstream = \"u\"\n";
}

ConfigPtr ok(const std::string& text) {
  const LoadResult r = load_config_text(text, "t.toml");
  if (r.error) FAIL(r.error->to_string());
  return r.config;
}

std::string error_of(const std::string& text) {
  const LoadResult r = load_config_text(text, "t.toml");
  REQUIRE_FALSE(r.ok());
  return r.error->to_string();
}

}  // namespace

TEST_CASE("drain_spread: default 0, must be shorter than drain_timeout") {
  CHECK(ok(doc(""))->drain_spread == 0ms);
  const ConfigPtr c = ok(doc("drain_timeout = \"10s\"\ndrain_spread = \"2s\""));
  CHECK(c->drain_spread == 2s);
  CHECK(c->drain_timeout == 10s);
  CHECK(
      error_of(doc("drain_timeout = \"10s\"\ndrain_spread = \"10s\"")) ==
      R"(t.toml:2:16: drain_spread: expected a duration shorter than drain_timeout (10000ms), got "10s")");
  CHECK(
      error_of(doc("drain_spread = \"30s\"")) ==
      R"(t.toml:1:16: drain_spread: expected a duration shorter than drain_timeout (10000ms), got "30s")");
  CHECK(error_of(doc("drain_spread = 2")) ==
        R"(t.toml:1:16: drain_spread: expected a duration like "30s" or "250ms", got integer 2)");
  // A zero drain_timeout leaves no window to spread over; zero spread is still fine.
  CHECK(ok(doc("drain_timeout = \"0s\"\ndrain_spread = \"0s\""))->drain_spread == 0ms);
}

TEST_CASE("upstream.rebalance: off unless present, defaults, values") {
  CHECK_FALSE(ok(doc(""))->upstreams[0].rebalance.enabled);
  const ConfigPtr defaults = ok(doc("", "[upstream.rebalance]"));  // keeps `d` alive
  const auto& d = defaults->upstreams[0].rebalance;
  CHECK(d.enabled);
  CHECK(d.factor == doctest::Approx(1.2));
  CHECK(d.interval == 1s);
  CHECK(d.max_per_second == 10u);
  const ConfigPtr values =
      ok(doc("", "[upstream.rebalance]\nfactor = 1.5\ninterval = \"500ms\"\nmax_per_second = 40"));
  const auto& v = values->upstreams[0].rebalance;
  CHECK(v.factor == doctest::Approx(1.5));
  CHECK(v.interval == 500ms);
  CHECK(v.max_per_second == 40u);
  CHECK(ok(doc("", "[upstream.rebalance]\nfactor = 2"))->upstreams[0].rebalance.factor ==
        doctest::Approx(2.0));
}

TEST_CASE("upstream.rebalance errors point at the value") {
  CHECK(error_of(doc("", "[upstream.rebalance]\nfactor = 0.9")) ==
        "t.toml:8:10: upstream.rebalance.factor: expected a number from 1.0 to 100 like 1.2, got "
        "0.9");
  CHECK(
      error_of(doc("", "[upstream.rebalance]\nfactor = \"1.2\"")) ==
      R"(t.toml:8:10: upstream.rebalance.factor: expected a number from 1.0 to 100 like 1.2, got "1.2")");
  CHECK(
      error_of(doc("", "[upstream.rebalance]\ninterval = \"0s\"")) ==
      R"(t.toml:8:12: upstream.rebalance.interval: expected a duration greater than 0, got "0s")");
  CHECK(error_of(doc("", "[upstream.rebalance]\nmax_per_second = 0")) ==
        "t.toml:8:18: upstream.rebalance.max_per_second: expected an integer in 1..100000, got "
        "integer 0");
  CHECK(error_of(doc("", "[upstream.rebalance]\nrate = 3"))
            .find(R"(unknown key "rate" in [upstream.rebalance])") != std::string::npos);
  CHECK(error_of(doc("", "rebalance = true")) ==
        "t.toml:7:13: upstream.rebalance: expected a table ([upstream.rebalance]), got boolean "
        "true");
}

TEST_CASE("upgrade_socket and upgrade_deadline: off and 10 minutes by default, values, errors") {
  const ConfigPtr d = ok(doc(""));
  CHECK(d->upgrade_socket.empty());
  CHECK(d->upgrade_deadline == 10min);
  const ConfigPtr c =
      ok(doc("upgrade_socket = \"/run/wsgate/upgrade.sock\"\nupgrade_deadline = \"90s\""));
  CHECK(c->upgrade_socket == "/run/wsgate/upgrade.sock");
  CHECK(c->upgrade_deadline == 90s);
  CHECK(ok(doc("upgrade_deadline = \"0s\""))->upgrade_deadline == 0ms);
  CHECK(error_of(doc("upgrade_socket = \"\"")) ==
        R"(t.toml:1:18: upgrade_socket: expected a file path of 1 to 107 bytes, got "")");
  CHECK(error_of(doc("upgrade_socket = \"/" + std::string(107, 'a') + "\""))
            .find("upgrade_socket: expected a file path of 1 to 107 bytes") != std::string::npos);
  CHECK(
      error_of(doc("upgrade_deadline = 5")) ==
      R"(t.toml:1:20: upgrade_deadline: expected a duration like "30s" or "250ms", got integer 5)");
}
