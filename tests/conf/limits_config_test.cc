// [limits]: keys, defaults, ranges and positions of errors.
#include <doctest/doctest.h>

#include <string>

#include "conf/config_loader.h"

using namespace wsgate::conf;

namespace {

const std::string kBase = R"(
[[listener]]
address = "127.0.0.1:8080"
[[upstream]]
name = "echo"
servers = ["127.0.0.1:9001"]
[[route]]
upstream = "echo"
)";

LoadResult load(const std::string& limits) {
  return load_config_text(kBase + "[limits]\n" + limits, "t.toml");
}

std::string error(const std::string& limits) {
  const LoadResult r = load(limits);
  REQUIRE(r.error.has_value());
  return r.error->to_string();
}

}  // namespace

TEST_CASE("no [limits]: every limit off") {
  const LoadResult r = load_config_text(kBase, "t.toml");
  REQUIRE(r.config);
  const Limits& l = r.config->limits;
  CHECK(l.max_connections == 0);
  CHECK(l.max_connections_per_client == 0);
  CHECK(l.new_connections_per_second_per_client == 0);
  CHECK(l.client_ipv6_prefix == 64);
  CHECK(l.client_table_size == 65536);
  CHECK_FALSE(l.any());
  CHECK_FALSE(l.per_client());
}

TEST_CASE("[limits] values") {
  const LoadResult r = load(
      "max_connections = 10000\nmax_connections_per_client = 100\n"
      "new_connections_per_second_per_client = 2.5\nnew_connections_burst = 20\n"
      "client_ipv6_prefix = 56\nclient_table_size = 1024\n");
  REQUIRE(r.config);
  const Limits& l = r.config->limits;
  CHECK(l.max_connections == 10000);
  CHECK(l.max_connections_per_client == 100);
  CHECK(l.new_connections_per_second_per_client == doctest::Approx(2.5));
  CHECK(l.new_connections_burst == 20);
  CHECK(l.client_ipv6_prefix == 56);
  CHECK(l.client_table_size == 1024);
  CHECK(l.any());
  CHECK(l.per_client());
  CHECK(r.config->limits.where.line == 9);
}

TEST_CASE("[limits] the burst defaults to the rate, rounded up, at least 1") {
  const LoadResult a = load("new_connections_per_second_per_client = 2.5\n");
  REQUIRE(a.config);
  CHECK(a.config->limits.new_connections_burst == 3);
  const LoadResult b = load("new_connections_per_second_per_client = 0.1\n");
  REQUIRE(b.config);
  CHECK(b.config->limits.new_connections_burst == 1);
  const LoadResult c = load("new_connections_per_second_per_client = 10\n");
  REQUIRE(c.config);
  CHECK(c.config->limits.new_connections_burst == 10);
}

TEST_CASE("[limits] errors carry file:line:column") {
  CHECK(error("max_connections = -1\n") ==
        "t.toml:10:19: limits.max_connections: expected an integer in 0..100000000, got "
        "integer -1");
  CHECK(error("max_connections_per_client = \"10\"\n") ==
        "t.toml:10:30: limits.max_connections_per_client: expected an integer in 0..10000000, "
        "got \"10\"");
  CHECK(error("new_connections_per_second_per_client = -2\n") ==
        "t.toml:10:41: limits.new_connections_per_second_per_client: expected a number of "
        "connections per second in 0..1000000 (0: no limit), got integer -2");
  CHECK(error("new_connections_per_second_per_client = \"fast\"\n") ==
        "t.toml:10:41: limits.new_connections_per_second_per_client: expected a number of "
        "connections per second in 0..1000000 (0: no limit), got \"fast\"");
  CHECK(error("new_connections_per_second_per_client = nan\n")
            .find("t.toml:10:41: limits.new_connections_per_second_per_client: expected") == 0);
  CHECK(error("new_connections_burst = 5\n") ==
        "t.toml:10:25: limits.new_connections_burst: only with "
        "new_connections_per_second_per_client greater than 0");
  CHECK(error("new_connections_per_second_per_client = 1\nnew_connections_burst = 0\n") ==
        "t.toml:11:25: limits.new_connections_burst: expected an integer in 1..10000000, got "
        "integer 0");
  CHECK(error("client_ipv6_prefix = 0\n") ==
        "t.toml:10:22: limits.client_ipv6_prefix: expected an integer in 1..128, got integer 0");
  CHECK(error("client_table_size = 10\n") ==
        "t.toml:10:21: limits.client_table_size: expected an integer in 64..16777216, got "
        "integer 10");
  CHECK(error("max_conections = 5\n").find("t.toml:10:1: ") == 0);
}

TEST_CASE("[limits] must be a table") {
  const LoadResult r = load_config_text("limits = 5\n" + kBase, "t.toml");
  REQUIRE(r.error.has_value());
  CHECK(r.error->to_string().find("t.toml:1:") == 0);
  CHECK(r.error->to_string().find("a table ([limits])") != std::string::npos);
}

TEST_CASE("conf/example-full.toml sets every [limits] key") {
  const LoadResult r = load_config(std::string(WSGATE_SOURCE_DIR) + "/conf/example-full.toml");
  if (r.error) FAIL(r.error->to_string());
  const Limits& l = r.config->limits;
  CHECK(l.max_connections == 50000);
  CHECK(l.max_connections_per_client == 200);
  CHECK(l.new_connections_per_second_per_client == doctest::Approx(20));
  CHECK(l.new_connections_burst == 50);
  CHECK(l.client_ipv6_prefix == 64);
  CHECK(l.client_table_size == 65536);
}
