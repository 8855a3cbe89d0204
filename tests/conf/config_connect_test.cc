// [connect] and listener.connect: the CONNECT tunnels' allow-list, users and timeouts.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <string>

#include "conf/config_connect.h"
#include "conf/config_loader.h"

using wsgate::conf::load_config_text;
using wsgate::conf::LoadResult;

namespace {

const std::string kHash =
    "pbkdf2-sha256$100000$c2FsdHNhbHQ=$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";

std::string doc(const std::string& connect, const std::string& listener = "connect = true") {
  return "[[listener]]\naddress = \"127.0.0.1:1\"\n" + listener +
         "\n[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
         "[[route]]\nupstream = \"u\"\n" +
         connect;
}

std::string error_of(const std::string& text) {
  const LoadResult r = load_config_text(text, "t.toml");
  REQUIRE_FALSE(r.ok());
  return r.error->to_string();
}

}  // namespace

TEST_CASE("connect: off by default, no [connect] means no rules and default timeouts") {
  const LoadResult r = load_config_text(doc("", ""), "t.toml");
  REQUIRE(r.ok());
  CHECK_FALSE(r.config->listeners[0].connect);
  CHECK(r.config->connect.allow.empty());
  CHECK(r.config->connect.users.empty());
  CHECK(r.config->connect.resolve_timeout.count() == 5000);
  CHECK(r.config->connect.buffer_size == 256 * 1024);
}

TEST_CASE("connect: rules, ports, users and timeouts are read") {
  const LoadResult r = load_config_text(
      doc("[connect]\nresolve_timeout = \"2s\"\nconnect_timeout = \"3s\"\nidle_timeout = \"1m\"\n"
          "buffer_size = \"64KiB\"\n"
          "[[connect.allow]]\nhost = \"*.Example.com\"\nports = [443, \"8000-8100\"]\n"
          "[[connect.allow]]\ncidr = \"10.0.0.0/8\"\nports = [22]\n"
          "[[connect.user]]\nname = \"alice\"\npassword_hash = \"" +
          kHash + "\"\n"),
      "t.toml");
  REQUIRE(r.ok());
  const auto& c = r.config->connect;
  CHECK(r.config->listeners[0].connect);
  CHECK(c.resolve_timeout.count() == 2000);
  CHECK(c.connect_timeout.count() == 3000);
  CHECK(c.idle_timeout.count() == 60000);
  CHECK(c.buffer_size == 64 * 1024);
  REQUIRE(c.allow.size() == 2);
  CHECK(c.allow[0].host == "*.example.com");
  REQUIRE(c.allow[0].ports.size() == 2);
  CHECK(c.allow[0].ports[1].first == 8000);
  CHECK(c.allow[0].ports[1].last == 8100);
  REQUIRE(c.allow[1].network.has_value());
  CHECK(c.allow[1].network->prefix == 8);
  REQUIRE(c.users.size() == 1);
  CHECK(c.users[0].name == "alice");
}

TEST_CASE("connect: bad values are reported at their position") {
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nports = [443]\n")) ==
        "t.toml:10:1: [[connect.allow]]: give exactly one of host or cidr");
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nhost = \"a\"\ncidr = \"10.0.0.0/8\"\n"
                     "ports = [1]\n")) ==
        "t.toml:10:1: [[connect.allow]]: give exactly one of host or cidr");
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nhost = \"a\"\n"))
            .find("is missing the required key \"ports\"") != std::string::npos);
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nhost = \"a\"\nports = [0]\n"))
            .starts_with("t.toml:12:10: connect.allow.ports: expected a port"));
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nhost = \"a\"\nports = [\"9-2\"]\n"))
            .starts_with("t.toml:12:10: connect.allow.ports"));
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nhost = \"a\"\nports = []\n"))
            .starts_with("t.toml:12:9: connect.allow.ports: expected a non-empty array"));
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\nhost = \"10.0.0.1\"\nports = [1]\n"))
            .find("(addresses take cidr") != std::string::npos);
  CHECK(error_of(doc("[connect]\n[[connect.allow]]\ncidr = \"10.0.0.1/8\"\nports = [1]\n"))
            .starts_with("t.toml:11:8: connect.allow.cidr: expected a network"));
  CHECK(error_of(doc("[connect]\nresolve_timeout = \"0s\"\n")).starts_with("t.toml:10:19:"));
  CHECK(error_of(doc("[connect]\nfoo = 1\n")).find("unknown key") != std::string::npos);
  CHECK(error_of(
            doc("[connect]\n[[connect.user]]\nname = \"a:b\"\npassword_hash = \"" + kHash + "\"\n"))
            .starts_with("t.toml:11:8: connect.user.name"));
  const std::string bad_hash =
      error_of(doc("[connect]\n[[connect.user]]\nname = \"a\"\npassword_hash = \"secret\"\n"));
  CHECK(bad_hash.starts_with("t.toml:12:17: connect.user.password_hash: expected the output"));
  CHECK(bad_hash.find("secret") == std::string::npos);  // a secret is never echoed
  CHECK(error_of(doc("[connect]\n[[connect.user]]\nname = \"a\"\npassword_hash = \"" + kHash +
                     "\"\n[[connect.user]]\nname = \"a\"\npassword_hash = \"" + kHash + "\"\n"))
            .starts_with(
                "t.toml:13:1: duplicate connect.user name \"a\" (first defined at line 10)"));
  CHECK(error_of(doc("", "connect = 1")).find("listener.connect") != std::string::npos);
}

TEST_CASE("connect: cidr forms") {
  using wsgate::conf::detail::parse_cidr;
  CHECK(parse_cidr("10.0.0.0/8").has_value());
  CHECK(parse_cidr("192.0.2.7")->prefix == 32);
  CHECK(parse_cidr("fd00::/8")->family == AF_INET6);
  CHECK(parse_cidr("::1")->prefix == 128);
  CHECK(parse_cidr("0.0.0.0/0").has_value());
  CHECK_FALSE(parse_cidr("10.0.0.1/8"));  // host bits set
  CHECK_FALSE(parse_cidr("10.0.0.0/33"));
  CHECK_FALSE(parse_cidr("10.0.0.0/"));
  CHECK_FALSE(parse_cidr("example.com/8"));
  CHECK_FALSE(parse_cidr("fd00::/129"));
}

TEST_CASE("connect: password hash shape") {
  using wsgate::conf::detail::is_password_hash;
  CHECK(is_password_hash(kHash));
  CHECK_FALSE(is_password_hash("pbkdf2-sha256$10$c2FsdA==$aGFzaA=="));  // too few iterations
  CHECK_FALSE(is_password_hash("sha256$100000$c2FsdA==$aGFzaA=="));
  CHECK_FALSE(is_password_hash("pbkdf2-sha256$100000$c2FsdA=="));
  CHECK_FALSE(is_password_hash("pbkdf2-sha256$100000$$aGFzaA=="));
}
