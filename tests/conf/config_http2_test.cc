// [[listener]] http2 / h2c: HTTP/2 by ALPN on TLS listeners, prior knowledge on plain ones.
#include <doctest/doctest.h>

#include <string>

#include "conf/config_loader.h"

using wsgate::conf::load_config_text;
using wsgate::conf::LoadResult;

namespace {

std::string doc(const std::string& listener) {
  return "[[listener]]\n" + listener +
         "\n[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
         "[[route]]\nupstream = \"u\"\n";
}

const std::string kTls = "[listener.tls]\ncertificates = [{ cert = \"c.pem\", key = \"k.pem\" }]\n";

}  // namespace

TEST_CASE("listener http2: on by default for TLS, h2c off by default for plain") {
  LoadResult plain = load_config_text(doc("address = \"127.0.0.1:1\""), "t.toml");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain.config->listeners[0].h2c);
  LoadResult tls = load_config_text(doc("address = \"127.0.0.1:1\"\n" + kTls), "t.toml");
  REQUIRE(tls.ok());
  CHECK(tls.config->listeners[0].http2);
  LoadResult off =
      load_config_text(doc("address = \"127.0.0.1:1\"\nhttp2 = false\n" + kTls), "t.toml");
  REQUIRE(off.ok());
  CHECK_FALSE(off.config->listeners[0].http2);
  LoadResult h2c = load_config_text(doc("address = \"127.0.0.1:1\"\nh2c = true"), "t.toml");
  REQUIRE(h2c.ok());
  CHECK(h2c.config->listeners[0].h2c);
}

TEST_CASE("listener http2 needs TLS, h2c needs a plain listener, both are booleans") {
  LoadResult r = load_config_text(doc("address = \"127.0.0.1:1\"\nhttp2 = true"), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->to_string() ==
        "t.toml:3:9: listener.http2: only for TLS listeners (plain ones take h2c = true)");
  r = load_config_text(doc("address = \"127.0.0.1:1\"\nh2c = true\n" + kTls), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->to_string() ==
        "t.toml:3:7: listener.h2c: only for plain listeners (TLS ones use http2)");
  r = load_config_text(doc("address = \"127.0.0.1:1\"\nh2c = \"yes\""), "t.toml");
  REQUIRE(r.error);
  CHECK(r.error->message == R"(listener.h2c: expected true or false, got "yes")");
}

TEST_CASE("listener http2_send_timeout: 60 s by default, a positive duration") {
  LoadResult def = load_config_text(doc("address = \"127.0.0.1:1\""), "t.toml");
  REQUIRE(def.ok());
  CHECK(def.config->listeners[0].http2_send_timeout == std::chrono::seconds(60));
  LoadResult set =
      load_config_text(doc("address = \"127.0.0.1:1\"\nhttp2_send_timeout = \"5s\""), "t.toml");
  REQUIRE(set.ok());
  CHECK(set.config->listeners[0].http2_send_timeout == std::chrono::seconds(5));
  LoadResult zero =
      load_config_text(doc("address = \"127.0.0.1:1\"\nhttp2_send_timeout = \"0s\""), "t.toml");
  CHECK_FALSE(zero.ok());
}
