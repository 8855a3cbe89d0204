// The observability keys: the [admin] table and access_log_format.
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

LoadResult load(const std::string& top, const std::string& tail = "") {
  return load_config_text(top + kBase + tail, "t.toml");
}

std::string error(const std::string& top, const std::string& tail = "") {
  const LoadResult r = load(top, tail);
  REQUIRE(r.error.has_value());
  return r.error->to_string();
}

}  // namespace

TEST_CASE("no [admin] table: no admin listener, text access log") {
  const LoadResult r = load("");
  REQUIRE(r.config);
  CHECK_FALSE(r.config->admin.enabled);
  CHECK(r.config->access_log_format == AccessLogFormat::Text);
}

TEST_CASE("[admin] defaults to 127.0.0.1:9090 without a token") {
  const LoadResult r = load("", "[admin]\n");
  REQUIRE(r.config);
  CHECK(r.config->admin.enabled);
  CHECK(r.config->admin.address.host == "127.0.0.1");
  CHECK(r.config->admin.address.port == 9090);
  CHECK(r.config->admin.read_token.empty());
  CHECK(r.config->admin.write_token.empty());
  CHECK_FALSE(r.config->admin.per_connection_metrics);
  CHECK(r.config->admin.per_connection_limit == 1000);
}

TEST_CASE("[admin] per-connection series") {
  const LoadResult r =
      load("", "[admin]\nper_connection_metrics = true\nper_connection_limit = 2\n");
  REQUIRE(r.config);
  CHECK(r.config->admin.per_connection_metrics);
  CHECK(r.config->admin.per_connection_limit == 2);
  CHECK(
      error("", "[admin]\nper_connection_limit = 0\n") ==
      "t.toml:10:24: admin.per_connection_limit: expected an integer in 1..100000, got integer 0");
  CHECK(error("", "[admin]\nper_connection_limit = 100001\n") ==
        "t.toml:10:24: admin.per_connection_limit: expected an integer in 1..100000, got integer "
        "100001");
  CHECK(error("", "[admin]\nper_connection_metrics = \"yes\"\n")
            .find("t.toml:10:26: admin.per_connection_metrics: expected") != std::string::npos);
}

TEST_CASE("[admin] address and token") {
  const LoadResult r = load("", "[admin]\naddress = \"[::1]:9100\"\ntoken = \"abc-123_x=\"\n");
  REQUIRE(r.config);
  CHECK(r.config->admin.address.host == "::1");
  CHECK(r.config->admin.address.port == 9100);
  CHECK(r.config->admin.read_token == "abc-123_x=");
  CHECK(r.config->admin.write_token == "abc-123_x=");
}

TEST_CASE("[admin] errors") {
  CHECK(
      error("", "[admin]\naddress = \"localhost:9090\"\n") ==
      R"(t.toml:10:11: admin.address: expected an IP address and port like "127.0.0.1:9090" or "[::1]:9090", got "localhost:9090")");
  CHECK(error("", "[admin]\naddress = \"127.0.0.1:8080\"\n") ==
        "t.toml:10:11: admin.address is also the address of the [[listener]] at line 3");
  // The token is a secret: the message does not repeat it.
  const std::string bad_token = error("", "[admin]\ntoken = \"has space\"\n");
  CHECK(bad_token.find("admin.token: expected a non-empty token") != std::string::npos);
  CHECK(bad_token.find("has space") == std::string::npos);
  CHECK(error("", "[admin]\ntoken = \"\"\n").find("admin.token") != std::string::npos);
  CHECK(error("", "[admin]\nport = 1\n").find(R"(unknown key "port" in [admin])") !=
        std::string::npos);
  CHECK(error("admin = 1\n").find("admin: expected a table ([admin])") != std::string::npos);
}

TEST_CASE("access_log_format") {
  const LoadResult json = load("access_log_format = \"json\"\n");
  REQUIRE(json.config);
  CHECK(json.config->access_log_format == AccessLogFormat::Json);
  const LoadResult text = load("access_log_format = \"text\"\n");
  REQUIRE(text.config);
  CHECK(text.config->access_log_format == AccessLogFormat::Text);
  CHECK(error("access_log_format = \"xml\"\n") ==
        R"(t.toml:1:21: access_log_format: expected one of: "text", "json", got "xml")");
}

TEST_CASE("[admin] read and write tokens, token files, and their conflicts") {
  const LoadResult split = load("", "[admin]\nread_token = \"r-1\"\nwrite_token = \"w-2\"\n");
  REQUIRE(split.config);
  CHECK(split.config->admin.read_token == "r-1");
  CHECK(split.config->admin.write_token == "w-2");
  const LoadResult only_write = load("", "[admin]\nwrite_token = \"w-2\"\n");
  REQUIRE(only_write.config);
  CHECK(only_write.config->admin.read_token.empty());

  // Conflicts name the second key's position; the token is never echoed.
  const std::string both = error("", "[admin]\ntoken = \"sec\"\ntoken_file = \"x\"\n");
  CHECK(both.find("t.toml:11:") != std::string::npos);
  CHECK(both.find("admin.token_file: at most one of token and token_file") != std::string::npos);
  const std::string mixed = error("", "[admin]\ntoken = \"sec\"\nread_token = \"x\"\n");
  CHECK(mixed.find("t.toml:11:") != std::string::npos);
  CHECK(mixed.find("admin.read_token: at most one of token") != std::string::npos);
  CHECK(mixed.find("sec") == std::string::npos);
  const std::string missing = error("", "[admin]\nwrite_token_file = \"no/such.token\"\n");
  CHECK(missing.find("t.toml:10:") != std::string::npos);
  CHECK(missing.find("admin.write_token_file: cannot read no/such.token") != std::string::npos);
  CHECK(error("", "[admin]\nread_token = \"has space\"\n")
            .find("admin.read_token: expected a non-empty token") != std::string::npos);
}
