// Loading and validating TOML configs (conf/config_loader.h): defaults, every key's type
// and range errors, unknown keys, error positions, cross-references, the shipped files.
#include "conf/config_loader.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifndef WSGATE_SOURCE_DIR
#define WSGATE_SOURCE_DIR "."
#endif

using namespace std::chrono_literals;
using namespace wsgate::conf;

namespace {

constexpr const char* kFile = "test.toml";

// A valid document made of its four parts; tests replace or extend one part.
struct Doc {
  std::string top = "";  // keys before the first table
  std::string listener = R"(address = "127.0.0.1:8080")";
  std::string upstream = "name = \"echo\"\nservers = [\"127.0.0.1:9001\"]";
  std::string route = R"(upstream = "echo")";

  [[nodiscard]] std::string text() const {
    return top + "\n[[listener]]\n" + listener + "\n[[upstream]]\n" + upstream + "\n[[route]]\n" +
           route + "\n";
  }
};

const std::string kListener = Doc().listener;
const std::string kUpstream = Doc().upstream;
const std::string kRoute = Doc().route;

ConfigPtr load_ok(const std::string& text) {
  const LoadResult result = load_config_text(text, kFile);
  if (result.error) FAIL_CHECK(result.error->to_string());
  REQUIRE(result.ok());
  return result.config;
}

ConfigError load_error(const std::string& text) {
  const LoadResult result = load_config_text(text, kFile);
  CHECK_FALSE(result.ok());
  REQUIRE(result.error.has_value());
  CHECK(result.error->file == kFile);
  return *result.error;
}

std::string error_message(const Doc& doc) {
  return load_error(doc.text()).message;
}

}  // namespace

TEST_CASE("a minimal config gets every default") {
  const ConfigPtr config = load_ok(Doc().text());
  CHECK(config->source_file == kFile);
  CHECK(config->workers == std::max(1u, std::thread::hardware_concurrency()));
  CHECK(config->drain_timeout == 10s);
  CHECK(config->access_log == "-");

  REQUIRE(config->listeners.size() == 1);
  const Listener& listener = config->listeners[0];
  CHECK(listener.name == "127.0.0.1:8080");
  CHECK(listener.address.host == "127.0.0.1");
  CHECK(listener.address.port == 8080);
  CHECK(listener.max_header_bytes == 16 * 1024);
  CHECK(listener.max_headers == 100);
  CHECK(listener.handshake_timeout == 10s);

  REQUIRE(config->upstreams.size() == 1);
  const Upstream& upstream = config->upstreams[0];
  CHECK(upstream.name == "echo");
  REQUIRE(upstream.servers.size() == 1);
  CHECK(upstream.servers[0].host == "127.0.0.1");
  CHECK(upstream.servers[0].port == 9001);
  CHECK(upstream.balancer == Balancer::LeastConn);
  CHECK(upstream.retries == 2);
  CHECK(upstream.servers[0].weight == 1);
  CHECK(upstream.servers[0].max_connections == 0);
  CHECK_FALSE(upstream.servers[0].backup);
  CHECK_FALSE(upstream.health_check.enabled);

  REQUIRE(config->routes.size() == 1);
  const Route& route = config->routes[0];
  CHECK(route.name == "*/");
  CHECK(route.host == "*");
  CHECK(route.path == "/");
  CHECK(route.upstream == "echo");
  CHECK(route.allowed_origins.empty());
  CHECK_FALSE(route.require_origin);
  CHECK(route.max_message_size == 16 * 1024 * 1024);
  CHECK(route.buffer_size == 256 * 1024);
  CHECK(route.connect_timeout == 5s);
  CHECK(route.upstream_handshake_timeout == 10s);
  CHECK(route.idle_timeout == 5min);
  CHECK(config->find_upstream("echo") == &upstream);
}

TEST_CASE("every key is read") {
  const ConfigPtr config = load_ok(
      "workers = 3\n"
      "drain_timeout = \"250ms\"\n"
      "access_log = \"\"\n"
      "[[listener]]\n"
      "name = \"public\"\n"
      "address = \"0.0.0.0:80\"\n"
      "max_header_bytes = \"8KiB\"\n"
      "max_headers = 20\n"
      "handshake_timeout = \"3s\"\n"
      "[[upstream]]\n"
      "name = \"api\"\n"
      "servers = [\"10.0.0.1:9001\", \"[::1]:9002\", \"backend.local:80\"]\n"
      "balancer = \"round_robin\"\n"
      "[[route]]\n"
      "name = \"api-route\"\n"
      "host = \"*.Example.COM\"\n"
      "path = \"/api\"\n"
      "upstream = \"api\"\n"
      "allowed_origins = [\"HTTPS://App.Example.com\", \"null\"]\n"
      "max_message_size = 1048576\n"
      "buffer_size = \"64KiB\"\n"
      "connect_timeout = \"2s\"\n"
      "upstream_handshake_timeout = \"4s\"\n"
      "idle_timeout = \"1h\"\n");
  CHECK(config->workers == 3);
  CHECK(config->drain_timeout == 250ms);
  CHECK(config->access_log.empty());
  const Listener& listener = config->listeners.at(0);
  CHECK(listener.name == "public");
  CHECK(listener.address.host == "0.0.0.0");
  CHECK(listener.address.port == 80);
  CHECK(listener.max_header_bytes == 8192);
  CHECK(listener.max_headers == 20);
  CHECK(listener.handshake_timeout == 3s);
  const Upstream& upstream = config->upstreams.at(0);
  REQUIRE(upstream.servers.size() == 3);
  CHECK(upstream.servers[1].host == "::1");
  CHECK(upstream.servers[1].port == 9002);
  CHECK(upstream.servers[2].host == "backend.local");
  const Route& route = config->routes.at(0);
  CHECK(route.name == "api-route");
  CHECK(route.host == "*.example.com");  // lowercased
  CHECK(route.path == "/api");
  CHECK(route.upstream == "api");
  CHECK(route.allowed_origins == std::vector<std::string>{"https://app.example.com", "null"});
  CHECK(route.max_message_size == 1048576);
  CHECK(route.buffer_size == 64 * 1024);
  CHECK(route.connect_timeout == 2s);
  CHECK(route.upstream_handshake_timeout == 4s);
  CHECK(route.idle_timeout == 1h);
}

TEST_CASE("source positions of listeners, upstreams and routes") {
  const ConfigPtr config = load_ok(Doc().text());
  // Line 1 is the empty top part; each [[header]] starts its table.
  CHECK(config->listeners[0].where.file == kFile);
  CHECK(config->listeners[0].where.line == 2);
  CHECK(config->listeners[0].where.column == 1);
  CHECK(config->upstreams[0].where.line == 4);
  CHECK(config->routes[0].where.line == 7);
}

TEST_CASE("workers: 0 means one per core, range 0..1024") {
  CHECK(load_ok(Doc{.top = "workers = 0"}.text())->workers ==
        std::max(1u, std::thread::hardware_concurrency()));
  CHECK(load_ok(Doc{.top = "workers = 1024"}.text())->workers == 1024);
  CHECK(error_message(Doc{.top = "workers = 1025"}) ==
        "workers: expected an integer in 0..1024, got integer 1025");
  CHECK(error_message(Doc{.top = "workers = -1"}) ==
        "workers: expected an integer in 0..1024, got integer -1");
}

TEST_CASE("a value of the wrong type names the key, the expectation and the value") {
  struct Case {
    Doc doc;
    std::string message;
  };
  const std::vector<Case> cases = {
      {Doc{.top = "workers = \"2\""}, R"(workers: expected an integer in 0..1024, got "2")"},
      {Doc{.top = "workers = 2.0"}, "workers: expected an integer in 0..1024, got float 2.0"},
      {Doc{.top = "drain_timeout = 10"},
       R"(drain_timeout: expected a duration like "30s" or "250ms", got integer 10)"},
      {Doc{.top = "access_log = false"}, "access_log: expected a string, got boolean false"},
      {Doc{.listener = "address = 8080"},
       R"(listener.address: expected a string, got integer 8080)"},
      {Doc{.listener = kListener + "\nname = 1"},
       "listener.name: expected a string, got integer 1"},
      {Doc{.listener = kListener + "\nmax_header_bytes = 1.5"},
       R"(listener.max_header_bytes: expected a size like "16KiB" or a number of bytes, got float 1.5)"},
      {Doc{.listener = kListener + "\nmax_headers = \"100\""},
       R"(listener.max_headers: expected an integer in 1..1000, got "100")"},
      {Doc{.listener = kListener + "\nhandshake_timeout = 10"},
       R"(listener.handshake_timeout: expected a duration like "30s" or "250ms", got integer 10)"},
      {Doc{.upstream = "name = 1\nservers = [\"a:1\"]"},
       "upstream.name: expected a string, got integer 1"},
      {Doc{.upstream = "name = \"echo\"\nservers = \"127.0.0.1:9001\""},
       R"(upstream.servers: expected an array of "host:port" strings or server tables, got "127.0.0.1:9001")"},
      {Doc{.upstream = "name = \"echo\"\nservers = [9001]"},
       R"(upstream.servers[0]: expected "host:port" like "10.0.0.1:9001", "[::1]:9001" or "backend:80", or a table like {address = "10.0.0.1:9001", weight = 2}, got integer 9001)"},
      {Doc{.upstream = kUpstream + "\nbalancer = 1"},
       "upstream.balancer: expected a string, got integer 1"},
      {Doc{.route = kRoute + "\nname = []"}, "route.name: expected a string, got an empty array"},
      {Doc{.route = kRoute + "\nhost = 1"}, "route.host: expected a string, got integer 1"},
      {Doc{.route = kRoute + "\npath = true"}, "route.path: expected a string, got boolean true"},
      {Doc{.route = "upstream = {}"}, "route.upstream: expected a string, got a table"},
      {Doc{.route = kRoute + "\nallowed_origins = \"https://a.com\""},
       R"(route.allowed_origins: expected an array of strings, got "https://a.com")"},
      {Doc{.route = kRoute + "\nallowed_origins = [1]"},
       R"(route.allowed_origins[0]: expected an origin like "https://app.example.com" (no path) or "null", got integer 1)"},
      {Doc{.route = kRoute + "\nmax_message_size = true"},
       R"(route.max_message_size: expected a size like "16KiB" or a number of bytes, got boolean true)"},
      {Doc{.route = kRoute + "\nbuffer_size = [1]"},
       R"(route.buffer_size: expected a size like "16KiB" or a number of bytes, got an array)"},
      {Doc{.route = kRoute + "\nconnect_timeout = 5"},
       R"(route.connect_timeout: expected a duration like "30s" or "250ms", got integer 5)"},
      {Doc{.route = kRoute + "\nupstream_handshake_timeout = 1979-05-27"},
       R"(route.upstream_handshake_timeout: expected a duration like "30s" or "250ms", got a date/time)"},
      {Doc{.route = kRoute + "\nidle_timeout = \"30 seconds\""},
       R"(route.idle_timeout: expected a duration like "30s" or "250ms", got "30 seconds")"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.doc.text());
    CHECK(error_message(c.doc) == c.message);
  }
}

TEST_CASE("sizes: strings with units or non-negative integers, within each key's range") {
  CHECK(load_ok(Doc{.listener = kListener + "\nmax_header_bytes = \"1KiB\""}.text())
            ->listeners[0]
            .max_header_bytes == 1024);
  CHECK(load_ok(Doc{.listener = kListener + "\nmax_header_bytes = 1048576"}.text())
            ->listeners[0]
            .max_header_bytes == 1048576);
  CHECK(error_message(Doc{.listener = kListener + "\nmax_header_bytes = \"1023B\""}) ==
        R"(listener.max_header_bytes: expected a size in 1KiB..1MiB, got "1023B")");
  CHECK(error_message(Doc{.listener = kListener + "\nmax_header_bytes = \"2MiB\""}) ==
        R"(listener.max_header_bytes: expected a size in 1KiB..1MiB, got "2MiB")");
  CHECK(
      error_message(Doc{.listener = kListener + "\nmax_header_bytes = -1"}) ==
      R"(listener.max_header_bytes: expected a size like "16KiB" or a number of bytes, got integer -1)");
  CHECK(error_message(Doc{.route = kRoute + "\nbuffer_size = \"2KiB\""}) ==
        R"(route.buffer_size: expected a size in 4KiB..64MiB, got "2KiB")");
  CHECK(error_message(Doc{.route = kRoute + "\nbuffer_size = \"65MiB\""}) ==
        R"(route.buffer_size: expected a size in 4KiB..64MiB, got "65MiB")");
  CHECK(load_ok(Doc{.route = kRoute + "\nbuffer_size = \"64MiB\""}.text())->routes[0].buffer_size ==
        64 * 1024 * 1024);
  CHECK(error_message(Doc{.route = kRoute + "\nmax_message_size = 0"}) ==
        "route.max_message_size: expected a size greater than 0, got integer 0");
  CHECK(
      error_message(Doc{.route = kRoute + "\nmax_message_size = \"16 MiB\""}) ==
      R"(route.max_message_size: expected a size like "16KiB" or a number of bytes, got "16 MiB")");
  CHECK(load_ok(Doc{.route = kRoute + "\nmax_message_size = \"1GB\""}.text())
            ->routes[0]
            .max_message_size == 1'000'000'000u);
}

TEST_CASE("integers out of range report the range") {
  CHECK(error_message(Doc{.listener = kListener + "\nmax_headers = 0"}) ==
        "listener.max_headers: expected an integer in 1..1000, got integer 0");
  CHECK(error_message(Doc{.listener = kListener + "\nmax_headers = 1001"}) ==
        "listener.max_headers: expected an integer in 1..1000, got integer 1001");
  CHECK(load_ok(Doc{.listener = kListener + "\nmax_headers = 1000"}.text())
            ->listeners[0]
            .max_headers == 1000);
}

TEST_CASE("durations: timeouts must be > 0, drain_timeout may be 0") {
  CHECK(load_ok(Doc{.top = "drain_timeout = \"0s\""}.text())->drain_timeout == 0ms);
  for (const char* key : {"connect_timeout", "upstream_handshake_timeout", "idle_timeout"}) {
    CAPTURE(key);
    CHECK(error_message(Doc{.route = kRoute + "\n" + key + " = \"0ms\""}) ==
          "route." + std::string(key) + R"(: expected a duration greater than 0, got "0ms")");
  }
  CHECK(error_message(Doc{.listener = kListener + "\nhandshake_timeout = \"0s\""}) ==
        R"(listener.handshake_timeout: expected a duration greater than 0, got "0s")");
  for (const char* bad : {"1.5s", "-1s", "10", " 1s", "1sec"}) {
    CAPTURE(bad);
    CHECK(error_message(Doc{.top = "drain_timeout = \"" + std::string(bad) + "\""}) ==
          R"(drain_timeout: expected a duration like "30s" or "250ms", got ")" + std::string(bad) +
              "\"");
  }
}

TEST_CASE("unknown keys are errors naming the key and the allowed ones") {
  CHECK(
      error_message(Doc{.top = "idle_timeout = \"5m\""}) ==
      R"(unknown key "idle_timeout" at the top level (allowed: workers, drain_timeout, access_log, access_log_format, nameservers, admin, listener, upstream, route, connect, limits, drain_spread, trusted_proxies, drain_delay, log_level, log_format, upgrade_socket, upgrade_deadline))");
  CHECK(
      error_message(Doc{.listener = kListener + "\nport = 80"}) ==
      R"(unknown key "port" in [[listener]] (allowed: address, name, max_header_bytes, max_headers, handshake_timeout, tls, http2, h2c, http2_send_timeout, connect, proxy_protocol, proxy_protocol_from))");
  CHECK(
      error_message(Doc{.upstream = kUpstream + "\nserver = \"a:1\""}) ==
      R"(unknown key "server" in [[upstream]] (allowed: name, servers, balancer, hash_key, affinity_cookie, keepalive, keepalive_timeout, retries, eject_after_failures, eject_duration, slow_start, resolve_interval, health_check, tls, rebalance, send_proxy_protocol); did you mean "servers"?)");
  CHECK(
      error_message(Doc{.route = kRoute + "\nidle_timout = \"5m\""}) ==
      R"(unknown key "idle_timout" in [[route]] (allowed: name, host, path, upstream, allowed_origins, require_origin, websocket_only, via, max_body_size, max_message_size, buffer_size, connect_timeout, upstream_handshake_timeout, idle_timeout, ping_interval, ping_timeout, ping_to, max_message_rate, max_message_burst, auth); did you mean "idle_timeout"?)");
  // A sub-table is an unknown key of its parent.
  CHECK(error_message(Doc{.listener = kListener + "\n[listener.ssl]\ncert = \"x\""})
            .starts_with(R"(unknown key "ssl" in [[listener]])"));
  CHECK(error_message(Doc{.listener = kListener + "\n[listener.tls]\ncert = \"x\""})
            .starts_with(R"(unknown key "cert" in [listener.tls])"));
  CHECK(error_message(Doc{.top = "[server]\nport = 1"})
            .starts_with(R"(unknown key "server" at the top level)"));
}

TEST_CASE("the first unknown key in file order is reported") {
  const ConfigError error = load_error(Doc{.route = kRoute + "\nzzz = 1\naaa = 2"}.text());
  CHECK(error.message.starts_with(R"(unknown key "zzz")"));
  CHECK(error.line == 9);
}

TEST_CASE("error positions are the offending value's line and column") {
  const std::string head =
      "[[listener]]\n"                    // 1
      "address = \"127.0.0.1:8080\"\n"    // 2
      "\n"                                // 3
      "[[upstream]]\n"                    // 4
      "name = \"echo\"\n"                 // 5
      "servers = [\"127.0.0.1:9001\"]\n"  // 6
      "\n"                                // 7
      "[[route]]\n"                       // 8
      "upstream = \"echo\"\n";            // 9

  SUBCASE("a bad duration") {
    const ConfigError e = load_error(head + "idle_timeout = \"30 seconds\"\n");
    CHECK(e.line == 10);
    CHECK(e.column == 16);
    CHECK(
        e.to_string() ==
        R"(test.toml:10:16: route.idle_timeout: expected a duration like "30s" or "250ms", got "30 seconds")");
  }
  SUBCASE("an unknown key: the key itself") {
    const ConfigError e = load_error(head + "  idle_timout = \"5m\"\n");
    CHECK(e.line == 10);
    CHECK(e.column == 3);
  }
  SUBCASE("a bad element of an array") {
    const ConfigError e = load_error(
        "[[listener]]\naddress = \"[::1]:8080\"\n[[upstream]]\nname = \"a\"\n"
        "servers = [\"127.0.0.1:9001\", \"bad host:1\"]\n[[route]]\nupstream = \"a\"\n");
    CHECK(e.line == 5);
    CHECK(e.column == 30);
    CHECK(
        e.message ==
        R"(upstream.servers[1]: expected "host:port" like "10.0.0.1:9001", "[::1]:9001" or "backend:80", or a table like {address = "10.0.0.1:9001", weight = 2}, got "bad host:1")");
  }
  SUBCASE("a missing required key: the table's header") {
    const ConfigError e = load_error(
        "[[listener]]\naddress = \"127.0.0.1:8080\"\n[[upstream]]\nname = \"echo\"\n"
        "servers = [\"127.0.0.1:9001\"]\n\n[[route]]\npath = \"/x\"\n");
    CHECK(e.line == 7);
    CHECK(e.column == 1);
    CHECK(e.message == R"([[route]] is missing the required key "upstream")");
  }
  SUBCASE("a route naming a missing upstream: the route's upstream value") {
    const ConfigError e = load_error(
        "[[listener]]\naddress = \"127.0.0.1:8080\"\n[[upstream]]\nname = \"echo\"\n"
        "servers = [\"127.0.0.1:9001\"]\n[[route]]\nname = \"api\"\nupstream = \"ehco\"\n");
    CHECK(e.line == 8);
    CHECK(e.column == 12);
    CHECK(e.message ==
          R"(route "api" names upstream "ehco", which is not defined (defined: echo))");
  }
  SUBCASE("a TOML syntax error") {
    const ConfigError e = load_error("workers = 2\nworkers = 3\n");
    CHECK(e.line == 2);
    CHECK(e.column == 11);
    CHECK(e.message.starts_with("invalid TOML: "));
    CHECK(e.message.find("workers") != std::string::npos);
  }
}

TEST_CASE("sections: at least one of each, as arrays of tables") {
  const ConfigError missing = load_error(
      "[[upstream]]\nname = \"echo\"\nservers = [\"127.0.0.1:9001\"]\n"
      "[[route]]\nupstream = \"echo\"\n");
  CHECK(missing.line == 0);
  CHECK(missing.to_string() == "test.toml: at least one [[listener]] is required");
  CHECK(load_error("[[listener]]\naddress = \"127.0.0.1:1\"\n").message ==
        "at least one [[upstream]] is required");
  CHECK(error_message(Doc{.top = "route = []"}).starts_with("invalid TOML"));  // redefined
  CHECK(load_error("listener = []\n").message ==
        "listener: expected an array of tables ([[listener]]), at least one, got an empty array");
  CHECK(load_error("[listener]\naddress = \"127.0.0.1:1\"\n").message ==
        "listener: expected an array of tables ([[listener]]), at least one, got a table");
  // Inline tables in an array are the same thing as [[listener]].
  const ConfigPtr inline_tables = load_ok(
      "listener = [{address = \"127.0.0.1:1\"}, {address = \"127.0.0.1:2\"}]\n"
      "upstream = [{name = \"echo\", servers = [\"127.0.0.1:9001\"]}]\n"
      "route = [{upstream = \"echo\"}]\n");
  CHECK(inline_tables->listeners.size() == 2);
}

TEST_CASE("required keys") {
  CHECK(error_message(Doc{.listener = "name = \"x\""}) ==
        R"([[listener]] is missing the required key "address")");
  CHECK(error_message(Doc{.upstream = "servers = [\"a:1\"]"}) ==
        R"([[upstream]] is missing the required key "name")");
  CHECK(error_message(Doc{.upstream = "name = \"echo\""}) ==
        R"([[upstream]] is missing the required key "servers")");
  CHECK(error_message(Doc{.upstream = "name = \"echo\"\nservers = []"}) ==
        R"(upstream.servers: expected at least one "host:port", got an empty array)");
}

TEST_CASE("listener addresses: IP literals only, IPv6 in brackets") {
  const ConfigPtr v6 = load_ok(Doc{.listener = "address = \"[::1]:8443\""}.text());
  CHECK(v6->listeners[0].address.host == "::1");
  CHECK(v6->listeners[0].address.port == 8443);
  CHECK(v6->listeners[0].name == "[::1]:8443");
  CHECK(load_ok(Doc{.listener = "address = \"[::]:80\""}.text())->listeners[0].address.host ==
        "::");
  CHECK(
      error_message(Doc{.listener = "address = \"localhost:8080\""}) ==
      R"(listener.address: expected an IP address and port like "127.0.0.1:8080" or "[::1]:8080", got "localhost:8080" (listeners take IP addresses, not host names))");
  CHECK(error_message(Doc{.listener = "address = \"::1:8080\""})
            .starts_with("listener.address: expected an IP address and port"));
  CHECK(error_message(Doc{.listener = "address = \"127.0.0.1\""})
            .starts_with("listener.address: expected an IP address and port"));
  CHECK(error_message(Doc{.listener = "address = \"127.0.0.1:0\""})
            .starts_with("listener.address: expected an IP address and port"));
}

TEST_CASE("duplicates: listener names and addresses, upstream names, route names and matches") {
  const ConfigError address = load_error(Doc{.listener = "address = \"[::1]:80\"\n[[listener]]\n"
                                                         "address = \"[0::1]:80\""}
                                             .text());
  CHECK(address.message == R"(duplicate listener address "[0::1]:80" (first defined at line 3))");
  CHECK(address.line == 5);
  CHECK(address.column == 11);
  CHECK(error_message(Doc{.listener = "address = \"127.0.0.1:1\"\nname = \"a\"\n[[listener]]\n"
                                      "address = \"127.0.0.1:2\"\nname = \"a\""}) ==
        R"(duplicate listener name "a" (first defined at line 4))");
  CHECK(error_message(Doc{.upstream = kUpstream + "\n[[upstream]]\n" + kUpstream}) ==
        R"(duplicate upstream name "echo" (first defined at line 5))");
  CHECK(error_message(Doc{.route = "name = \"r\"\nupstream = \"echo\"\npath = \"/a\"\n[[route]]\n"
                                   "name = \"r\"\nupstream = \"echo\"\npath = \"/b\""}) ==
        R"(duplicate route name "r" (first defined at line 8))");
  // Same host and path: the later route could never be chosen.
  const ConfigError same_match =
      load_error(Doc{.route = "path = \"/a\"\nupstream = \"echo\"\n[[route]]\nname = \"other\"\n"
                              "host = \"*\"\npath = \"/a\"\nupstream = \"echo\""}
                     .text());
  CHECK(
      same_match.message ==
      R"(route "other" has the same host "*" and path "/a" as an earlier route (first defined at line 7))");
  CHECK(same_match.line == 10);
  // Same path on different hosts is fine; default names differ too.
  const ConfigPtr two =
      load_ok(Doc{.route = "path = \"/a\"\nupstream = \"echo\"\n[[route]]\nhost = \"Example.com\"\n"
                           "path = \"/a\"\nupstream = \"echo\""}
                  .text());
  REQUIRE(two->routes.size() == 2);
  CHECK(two->routes[0].name == "*/a");
  CHECK(two->routes[1].name == "example.com/a");
}

TEST_CASE("route hosts, paths and origins") {
  for (const char* host : {"*", "example.com", "*.example.com", "localhost", "10.0.0.1"}) {
    CAPTURE(host);
    CHECK(load_ok(Doc{.route = kRoute + "\nhost = \"" + host + "\""}.text())->routes[0].host ==
          host);
  }
  for (const char* host : {"", "exa mple.com", "*example.com", "example.com:80", "*.*.example.com",
                           "example.*", "**"}) {
    CAPTURE(host);
    CHECK(error_message(Doc{.route = kRoute + "\nhost = \"" + host + "\""}) ==
          R"(route.host: expected "*", "example.com" or "*.example.com", got ")" +
              std::string(host) + "\"");
  }
  for (const char* path : {"echo", "", "/a?b", "/a#b", "/a b"}) {
    CAPTURE(path);
    CHECK(
        error_message(Doc{.route = kRoute + "\npath = \"" + path + "\""}) ==
        R"(route.path: expected a path starting with "/" like "/chat", without "?" or "#", got ")" +
            std::string(path) + "\"");
  }
  for (const char* origin :
       {"https://app.example.com/", "*", "app.example.com", "https://", "https://a.com/path"}) {
    CAPTURE(origin);
    CHECK(error_message(Doc{.route = kRoute + "\nallowed_origins = [\"" + origin + "\"]"})
              .starts_with("route.allowed_origins[0]: expected an origin like"));
  }
  CHECK(load_ok(Doc{.route = kRoute + "\nallowed_origins = [\"http://localhost:3000\"]"}.text())
            ->routes[0]
            .allowed_origins.at(0) == "http://localhost:3000");
}

TEST_CASE("require_origin: strict Origin mode, only with allowed_origins") {
  const std::string origins = kRoute + "\nallowed_origins = [\"https://app.example.com\"]";
  CHECK_FALSE(load_ok(Doc{.route = origins}.text())->routes[0].require_origin);
  CHECK(
      load_ok(Doc{.route = origins + "\nrequire_origin = true"}.text())->routes[0].require_origin);
  CHECK_FALSE(
      load_ok(Doc{.route = origins + "\nrequire_origin = false"}.text())->routes[0].require_origin);
  CHECK(load_ok(Doc{.route = kRoute + "\nrequire_origin = false"}.text())->routes.size() == 1);
  CHECK(error_message(Doc{.route = kRoute + "\nrequire_origin = \"yes\""}) ==
        R"(route.require_origin: expected true or false, got "yes")");
  // Without a list there is nothing to be strict about: any Origin passes.
  const ConfigError e = load_error(Doc{.route = kRoute + "\nrequire_origin = true"}.text());
  CHECK(e.line == 9);
  CHECK(e.column == 18);
  CHECK(e.message ==
        "route.require_origin: only with a non-empty allowed_origins (without it any Origin, or "
        "none, is accepted)");
}

TEST_CASE("names must not be empty") {
  CHECK(error_message(Doc{.listener = kListener + "\nname = \"\""}) ==
        R"(listener.name: expected a non-empty string, got "")");
  CHECK(error_message(Doc{.upstream = "name = \"\"\nservers = [\"a:1\"]"}) ==
        R"(upstream.name: expected a non-empty string, got "")");
  CHECK(error_message(Doc{.route = kRoute + "\nname = \"\""}) ==
        R"(route.name: expected a non-empty string, got "")");
}

TEST_CASE("balancer: the four names, anything else is an error") {
  CHECK(load_ok(Doc{.upstream = kUpstream + "\nbalancer = \"round_robin\""}.text())
            ->upstreams[0]
            .balancer == Balancer::RoundRobin);
  CHECK(load_ok(Doc{.upstream = kUpstream + "\nbalancer = \"random_two\""}.text())
            ->upstreams[0]
            .balancer == Balancer::RandomTwo);
  CHECK(
      error_message(Doc{.upstream = kUpstream + "\nbalancer = \"leastconn\""}) ==
      R"(upstream.balancer: expected one of "least_conn", "round_robin", "random_two", "hash", got "leastconn")");
}

TEST_CASE("control characters in values are escaped in messages") {
  CHECK(error_message(Doc{.route = kRoute + "\npath = \"a\\n\\\"b\""})
            .ends_with(R"(got "a\x0a\"b")"));
}

TEST_CASE("ConfigError::to_string omits missing positions") {
  CHECK(ConfigError{"f.toml", 3, 7, "bad"}.to_string() == "f.toml:3:7: bad");
  CHECK(ConfigError{"f.toml", 3, 0, "bad"}.to_string() == "f.toml:3: bad");
  CHECK(ConfigError{"f.toml", 0, 0, "bad"}.to_string() == "f.toml: bad");
}

TEST_CASE("load_config: an unreadable file is an error without position") {
  const LoadResult result = load_config("/nonexistent/wsgate.toml");
  CHECK_FALSE(result.ok());
  REQUIRE(result.error.has_value());
  CHECK(result.error->line == 0);
  CHECK(result.error->to_string() ==
        "/nonexistent/wsgate.toml: cannot read config file: " + std::string(std::strerror(ENOENT)));
}

TEST_CASE("the shipped configs load") {
  const std::string dir = WSGATE_SOURCE_DIR;
  SUBCASE("conf/wsgate.toml: the demo default") {
    const LoadResult result = load_config(dir + "/conf/wsgate.toml");
    if (result.error) FAIL(result.error->to_string());
    const Config& config = *result.config;
    CHECK(config.source_file == dir + "/conf/wsgate.toml");
    CHECK(config.workers == std::max(1u, std::thread::hardware_concurrency()));
    REQUIRE(config.listeners.size() == 1);
    CHECK(config.listeners[0].address.host == "127.0.0.1");
    CHECK(config.listeners[0].address.port == 8080);
    REQUIRE(config.upstreams.size() == 1);
    CHECK(config.upstreams[0].name == "echo");
    REQUIRE(config.upstreams[0].servers.size() == 1);
    CHECK(config.upstreams[0].servers[0].host == "127.0.0.1");
    CHECK(config.upstreams[0].servers[0].port == 9001);
    REQUIRE(config.routes.size() == 1);
    CHECK(config.routes[0].path == "/");
    CHECK(config.routes[0].upstream == "echo");
  }
  SUBCASE("conf/example-full.toml: every key") {
    const LoadResult result = load_config(dir + "/conf/example-full.toml");
    if (result.error) FAIL(result.error->to_string());
    CHECK(result.config->listeners.size() == 3);
    CHECK(result.config->upstreams.size() == 2);
    CHECK(result.config->routes.size() == 3);
    CHECK(result.config->drain_spread == std::chrono::seconds(20));
    CHECK(result.config->drain_delay == std::chrono::seconds(5));
    CHECK(result.config->log_level == wsgate::conf::LogLevel::Info);
    CHECK(result.config->trusted_proxies.size() == 1);
    CHECK(result.config->listeners[2].proxy_protocol);
    CHECK(result.config->listeners[2].proxy_protocol_from.size() == 2);
    CHECK(result.config->upstreams[0].rebalance.enabled);
    CHECK(result.config->upstreams[0].rebalance.max_per_second == 10);
  }
}

TEST_CASE("send_proxy_protocol: v1 or v2, and keepalive 0 with it") {
  CHECK(load_ok(Doc().text())->upstreams[0].send_proxy_protocol == Upstream::ProxyProtocol::Off);
  ConfigPtr c = load_ok(Doc{.upstream = kUpstream + "\nsend_proxy_protocol = \"v2\""}.text());
  CHECK(c->upstreams[0].send_proxy_protocol == Upstream::ProxyProtocol::V2);
  CHECK(c->upstreams[0].keepalive == 0);  // pooled connections would carry another client
  c = load_ok(Doc{.upstream = kUpstream + "\nsend_proxy_protocol = \"v1\"\nkeepalive = 0"}.text());
  CHECK(c->upstreams[0].send_proxy_protocol == Upstream::ProxyProtocol::V1);

  // Line 4 is [[upstream]]: name 5, servers 6, then the added keys.
  ConfigError e = load_error(Doc{.upstream = kUpstream + "\nsend_proxy_protocol = \"v3\""}.text());
  CHECK(e.line == 7);
  CHECK(e.column > 0);
  CHECK(e.message.find("send_proxy_protocol") != std::string::npos);
  CHECK(e.message.find(R"("v1" or "v2")") != std::string::npos);
  e = load_error(Doc{.upstream = kUpstream + "\nsend_proxy_protocol = true"}.text());
  CHECK(e.line == 7);

  e = load_error(
      Doc{.upstream = kUpstream + "\nkeepalive = 8\nsend_proxy_protocol = \"v2\""}.text());
  CHECK(e.line == 7);     // points at keepalive
  CHECK(e.column == 13);  // its value
  CHECK(e.message.find("keepalive: must be 0 with send_proxy_protocol") != std::string::npos);
}
