// Durations, sizes and host:port parsing (conf/units.h).
#include "conf/units.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

using namespace std::chrono_literals;
using wsgate::conf::is_host_name;
using wsgate::conf::is_ip_literal;
using wsgate::conf::parse_duration;
using wsgate::conf::parse_host_port;
using wsgate::conf::parse_size;

TEST_CASE("parse_duration accepts a whole number with ms, s, m or h") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("0s") == 0ms);
  CHECK(parse_duration("0ms") == 0ms);
  CHECK(parse_duration("007s") == 7s);
  CHECK(parse_duration("90m") == 90min);
}

TEST_CASE("parse_duration rejects missing units, signs, fractions and spaces") {
  for (const char* text : {"10", "", "s", "ms", "1.5s", "-1s", "+1s", " 1s", "1s ", "1 s", "1S",
                           "1Ms", "1sec", "1d", "1us", "1m30s", "0x10s", "1e3ms"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

TEST_CASE("parse_duration rejects overflow") {
  const auto max_ms = std::numeric_limits<std::int64_t>::max();
  CHECK(parse_duration(std::to_string(max_ms) + "ms") == std::chrono::milliseconds(max_ms));
  CHECK_FALSE(parse_duration("9223372036854775808ms").has_value());  // 2^63
  CHECK_FALSE(parse_duration("9223372036854776s").has_value());      // * 1000 > 2^63
  CHECK_FALSE(parse_duration("2562047788016h").has_value());         // * 3600000 > 2^63
  CHECK(parse_duration("2562047788015h").has_value());
  CHECK_FALSE(parse_duration("99999999999999999999999s").has_value());  // > 2^64
}

TEST_CASE("parse_size accepts bytes and binary and decimal units") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("10") == 10u);
  CHECK(parse_size("512B") == 512u);
  CHECK(parse_size("1KiB") == 1024u);
  CHECK(parse_size("16MiB") == 16u * 1024 * 1024);
  CHECK(parse_size("1GiB") == 1024u * 1024 * 1024);
  CHECK(parse_size("1KB") == 1000u);
  CHECK(parse_size("2MB") == 2'000'000u);
  CHECK(parse_size("3GB") == 3'000'000'000u);
  CHECK(parse_size("0KiB") == 0u);
}

TEST_CASE("parse_size rejects malformed sizes") {
  for (const char* text : {"", "KiB", "B", "1.5KiB", "-1", "+1", " 1KiB", "1KiB ", "1 KiB", "1kib",
                           "1kb", "1K", "1k", "1TiB", "1b", "1KiBB", "0x10"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_size(text).has_value());
  }
}

TEST_CASE("parse_size rejects overflow") {
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK(parse_size("17179869183GiB").has_value());
  CHECK_FALSE(parse_size("17179869184GiB").has_value());  // 2^34 GiB = 2^64
  CHECK_FALSE(parse_size("18446744073709552KB").has_value());
}

TEST_CASE("parse_host_port reads IPv4, bracketed IPv6 and host names") {
  auto v4 = parse_host_port("127.0.0.1:8080");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 8080);

  auto v6 = parse_host_port("[::1]:9002");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 9002);

  auto any6 = parse_host_port("[::]:80");
  REQUIRE(any6);
  CHECK(any6->host == "::");

  auto long6 = parse_host_port("[0:0:0:0:0:0:0:1]:1");  // stored in canonical form
  REQUIRE(long6);
  CHECK(long6->host == "::1");
  CHECK(long6->port == 1);

  auto mapped = parse_host_port("[::ffff:10.0.0.1]:65535");
  REQUIRE(mapped);
  CHECK(mapped->host == "::ffff:10.0.0.1");
  CHECK(mapped->port == 65535);

  for (const char* text :
       {"backend.local:80", "localhost:1", "my_service:8080", "a-b.c-d.io:443", "3com.com:80"}) {
    CAPTURE(text);
    auto named = parse_host_port(text);
    REQUIRE(named);
    CHECK(named->host == std::string(text).substr(0, std::string(text).rfind(':')));
  }
}

TEST_CASE("parse_host_port rejects bad hosts and ports") {
  for (const char* text : {"",
                           "127.0.0.1",
                           "127.0.0.1:",
                           ":80",
                           "127.0.0.1:0",
                           "127.0.0.1:65536",
                           "127.0.0.1:80x",
                           "127.0.0.1:+80",
                           "127.0.0.1:-1",
                           "127.0.0.1: 80",
                           " 127.0.0.1:80",
                           "::1:8080",
                           "[::1]8080",
                           "[::1]",
                           "[::1]:",
                           "[1.2.3.4]:80",
                           "[backend]:80",
                           "[::1:80",
                           "1.2.3.999:80",
                           "1.2.3:80",
                           "010.0.0.1:80",
                           "-bad.com:80",
                           "bad-.com:80",
                           "a..b:80",
                           ".a:80",
                           "a.:80",
                           "host name:80",
                           "h\xc3\xa9.com:80",
                           "[fe80::1%eth0]:80"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_host_port(text).has_value());
  }
}

TEST_CASE("is_ip_literal and is_host_name") {
  CHECK(is_ip_literal("10.0.0.1"));
  CHECK(is_ip_literal("::1"));
  CHECK(is_ip_literal("fd00::13"));
  CHECK_FALSE(is_ip_literal("[::1]"));
  CHECK_FALSE(is_ip_literal("localhost"));
  CHECK_FALSE(is_ip_literal("10.0.0"));

  CHECK(is_host_name("example.com"));
  CHECK(is_host_name("x"));
  CHECK(is_host_name(std::string(63, 'a') + ".com"));
  CHECK_FALSE(is_host_name(std::string(64, 'a') + ".com"));
  CHECK_FALSE(is_host_name(std::string(254, 'a')));
  CHECK_FALSE(is_host_name(""));
  CHECK_FALSE(is_host_name("10.0.0.1"));  // all-numeric last label: an address, not a name
  CHECK_FALSE(is_host_name("*.example.com"));
}
