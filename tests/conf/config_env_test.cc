// ${NAME} in string values (conf/config_env.h).
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "conf/config_env.h"
#include "conf/config_loader.h"

using wsgate::conf::load_config_text;
using wsgate::conf::LoadResult;
using wsgate::conf::detail::expand_environment;

namespace {

const std::map<std::string, std::string> kEnv = {
    {"TOKEN", "s3cret"}, {"EMPTY", ""}, {"_A1", "x"}, {"PORT", "9001"}};

const char* fake_env(const std::string& name) {
  const auto it = kEnv.find(name);
  return it == kEnv.end() ? nullptr : it->second.c_str();
}

std::string expanded(const std::string& text) {
  std::string error;
  const auto out = expand_environment(text, &error, fake_env);
  REQUIRE_MESSAGE(out.has_value(), error);
  return *out;
}

std::string error_of(const std::string& text) {
  std::string error;
  const auto out = expand_environment(text, &error, fake_env);
  REQUIRE_FALSE(out.has_value());
  return error;
}

}  // namespace

TEST_CASE("environment: ${NAME} is replaced, everything else kept") {
  CHECK(expanded("${TOKEN}") == "s3cret");
  CHECK(expanded("a-${TOKEN}-${_A1}-b") == "a-s3cret-x-b");
  CHECK(expanded("127.0.0.1:${PORT}") == "127.0.0.1:9001");
  CHECK(expanded("${EMPTY}") == "");
  CHECK(expanded("no dollar") == "no dollar");
  // A lone "$" and "$NAME" without braces stay (password hashes are full of "$").
  CHECK(expanded("pbkdf2-sha256$100000$c2FsdA==$aGFzaA==") ==
        "pbkdf2-sha256$100000$c2FsdA==$aGFzaA==");
  CHECK(expanded("$TOKEN $ $}") == "$TOKEN $ $}");
  CHECK(expanded("$${TOKEN}") == "${TOKEN}");  // escaped
  CHECK(expanded("$$${TOKEN}") == "$s3cret");
  CHECK(expanded("a$$b") == "a$b");
  CHECK(expanded("${TOKEN}$") == "s3cret$");
}

TEST_CASE("environment: unset or malformed references are errors that name no value") {
  CHECK(error_of("${NOPE}") == "environment variable NOPE is not set");
  CHECK(error_of("x${TOKEN").find("without a closing") != std::string::npos);
  CHECK(error_of("${}").find("environment variable name") != std::string::npos);
  CHECK(error_of("${1A}").find("environment variable name") != std::string::npos);
  CHECK(error_of("${A-B}").find("environment variable name") != std::string::npos);
  CHECK(error_of("${TOKEN}${NOPE}").find("s3cret") == std::string::npos);
}

TEST_CASE("environment: string values anywhere in the file, with positions on errors") {
  setenv("WSGATE_TEST_ENV_PORT", "9123", 1);
  setenv("WSGATE_TEST_ENV_TOKEN", "tok3n", 1);
  unsetenv("WSGATE_TEST_ENV_UNSET");
  const std::string text =
      "[[listener]]\naddress = \"127.0.0.1:${WSGATE_TEST_ENV_PORT}\"\n"
      "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\", {address = "
      "\"127.0.0.1:${WSGATE_TEST_ENV_PORT}\"}]\n"
      "[[route]]\nupstream = \"u\"\n"
      "[admin]\ntoken = \"${WSGATE_TEST_ENV_TOKEN}\"\n";
  const LoadResult r = load_config_text(text, "t.toml");
  REQUIRE_MESSAGE(r.ok(), r.error->to_string());
  CHECK(r.config->listeners[0].address.port == 9123);
  CHECK(r.config->upstreams[0].servers[1].port == 9123);
  CHECK(r.config->admin.read_token == "tok3n");
  const LoadResult bad = load_config_text(
      "workers = 1\n[[listener]]\naddress = \"127.0.0.1:1\"\nname = \"${WSGATE_TEST_ENV_UNSET}\"\n",
      "t.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error->line == 4);
  CHECK(bad.error->column == 8);
  CHECK(bad.error->message == "environment variable WSGATE_TEST_ENV_UNSET is not set");
}
