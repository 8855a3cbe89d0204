// listener.proxy_protocol / proxy_protocol_from and the top-level trusted_proxies.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <string>

#include "conf/config_loader.h"

using wsgate::conf::load_config_text;
using wsgate::conf::LoadResult;

namespace {

std::string doc(const std::string& listener, const std::string& top = "") {
  return top + "[[listener]]\naddress = \"127.0.0.1:1\"\n" + listener +
         "\n[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
         "[[route]]\nupstream = \"u\"\n";
}

wsgate::conf::ConfigError error_of(const std::string& text) {
  const LoadResult r = load_config_text(text, "t.toml");
  REQUIRE_FALSE(r.ok());
  return *r.error;
}

}  // namespace

TEST_CASE("proxy_protocol: off by default, no trusted proxies") {
  const LoadResult r = load_config_text(doc(""), "t.toml");
  REQUIRE(r.ok());
  CHECK_FALSE(r.config->listeners[0].proxy_protocol);
  CHECK(r.config->listeners[0].proxy_protocol_from.empty());
  CHECK(r.config->trusted_proxies.empty());
}

TEST_CASE("proxy_protocol: networks are read") {
  const LoadResult r = load_config_text(
      doc("proxy_protocol = true\nproxy_protocol_from = [\"10.0.0.0/8\", \"::1\", \"127.0.0.1\"]",
          "trusted_proxies = [\"192.168.0.0/16\", \"fd00::/8\"]\n"),
      "t.toml");
  REQUIRE(r.ok());
  const auto& l = r.config->listeners[0];
  CHECK(l.proxy_protocol);
  REQUIRE(l.proxy_protocol_from.size() == 3);
  CHECK(l.proxy_protocol_from[0].family == AF_INET);
  CHECK(l.proxy_protocol_from[0].prefix == 8);
  CHECK(l.proxy_protocol_from[1].family == AF_INET6);
  CHECK(l.proxy_protocol_from[1].prefix == 128);
  CHECK(l.proxy_protocol_from[2].prefix == 32);
  REQUIRE(r.config->trusted_proxies.size() == 2);
  CHECK(r.config->trusted_proxies[1].prefix == 8);
}

TEST_CASE("proxy_protocol: mistakes are reported at the value") {
  // Without the networks it is accepted from: refused (no "from anywhere" default).
  auto e = error_of(doc("proxy_protocol = true"));
  CHECK(e.line == 3);
  CHECK(e.message.find("proxy_protocol_from") != std::string::npos);
  e = error_of(doc("proxy_protocol = true\nproxy_protocol_from = []"));
  CHECK(e.line == 4);
  e = error_of(doc("proxy_protocol_from = [\"10.0.0.0/8\"]"));
  CHECK(e.line == 3);
  CHECK(e.message.find("only with proxy_protocol = true") != std::string::npos);
  e = error_of(doc("proxy_protocol = true\nproxy_protocol_from = [\"10.0.0.1/8\"]"));
  CHECK(e.line == 4);
  CHECK(e.column == 24);
  CHECK(e.message.find("proxy_protocol_from[0]") != std::string::npos);
  e = error_of(doc("proxy_protocol = \"yes\"\nproxy_protocol_from = [\"10.0.0.0/8\"]"));
  CHECK(e.line == 3);
  e = error_of(doc("", "trusted_proxies = [\"10.0.0.0/8\", \"proxy.example\"]\n"));
  CHECK(e.line == 1);
  CHECK(e.message.find("trusted_proxies[1]") != std::string::npos);
}
