// The admin server's pure parts: bearer tokens, /connections filters and JSON.
#include <doctest/doctest.h>

#include "metrics/admin/admin_server.h"
#include "metrics/admin/connection_table.h"

using namespace wsgate::metrics;

TEST_CASE("bearer token check") {
  const std::string token = "s3cr3t-T0ken";
  CHECK(bearer_token_matches("Bearer s3cr3t-T0ken", token));
  CHECK(bearer_token_matches("bearer s3cr3t-T0ken", token));  // scheme is case-insensitive
  CHECK_FALSE(bearer_token_matches(nullptr, token));
  CHECK_FALSE(bearer_token_matches("", token));
  CHECK_FALSE(bearer_token_matches("Bearer s3cr3t-T0ke", token));
  CHECK_FALSE(bearer_token_matches("Bearer s3cr3t-T0kenX", token));
  CHECK_FALSE(bearer_token_matches("Basic s3cr3t-T0ken", token));
  CHECK_FALSE(bearer_token_matches("s3cr3t-T0ken", token));
}

TEST_CASE("admin writes without a write token: the Host must name the admin listener") {
  // DNS rebinding brings the attacker's name in Host; IP literals cannot be rebound.
  CHECK(host_is_admin_listener("127.0.0.1:9090", "127.0.0.1", 9090));
  CHECK(host_is_admin_listener("localhost:9090", "127.0.0.1", 9090));
  CHECK(host_is_admin_listener("LocalHost:9090", "127.0.0.1", 9090));
  CHECK(host_is_admin_listener("127.0.0.2:9090", "127.0.0.1", 9090));
  CHECK(host_is_admin_listener("[::1]:9090", "::1", 9090));
  CHECK(host_is_admin_listener("10.1.2.3:9090", "10.1.2.3", 9090));
  CHECK(host_is_admin_listener("10.1.2.3:9090", "0.0.0.0", 9090));
  CHECK(host_is_admin_listener("[2001:db8::1]:9090", "::", 9090));
  CHECK(host_is_admin_listener("localhost", "127.0.0.1", 80));
  CHECK_FALSE(host_is_admin_listener("evil.example:9090", "127.0.0.1", 9090));
  CHECK_FALSE(host_is_admin_listener("evil.example:9090", "0.0.0.0", 9090));
  CHECK_FALSE(host_is_admin_listener("127.0.0.1:9091", "127.0.0.1", 9090));
  CHECK_FALSE(host_is_admin_listener("127.0.0.1", "127.0.0.1", 9090));
  CHECK_FALSE(host_is_admin_listener("10.9.9.9:9090", "10.1.2.3", 9090));
  CHECK_FALSE(host_is_admin_listener("[::1:9090", "::1", 9090));
  CHECK_FALSE(host_is_admin_listener("127.0.0.1:90x", "127.0.0.1", 9090));
  CHECK_FALSE(host_is_admin_listener("", "127.0.0.1", 9090));
  CHECK_FALSE(host_is_admin_listener("localhost.evil.example:9090", "127.0.0.1", 9090));
}

TEST_CASE("bearer tokens compare by digest, so a wrong length is just a mismatch") {
  const TokenDigest d = token_digest("s3cr3t-T0ken");
  CHECK(bearer_token_matches("Bearer s3cr3t-T0ken", d));
  CHECK(bearer_token_matches("Bearer   s3cr3t-T0ken", d));
  CHECK_FALSE(bearer_token_matches("Bearer s", d));
  CHECK_FALSE(bearer_token_matches("Bearer ", d));
  CHECK_FALSE(bearer_token_matches(("Bearer " + std::string(10000, 'x')).c_str(), d));
}

TEST_CASE("connection filter parsing") {
  ConnectionFilter f;
  CHECK(parse_connection_filter("route=chat%2Fv1&server=10.0.0.1%3A9000&limit=5", f).empty());
  CHECK(f.route == "chat/v1");
  CHECK(f.server == "10.0.0.1:9000");
  CHECK(f.limit == 5);
  ConnectionFilter g;
  CHECK(parse_connection_filter("", g).empty());
  CHECK(g.limit == 1000);
  CHECK_FALSE(parse_connection_filter("limit=-1", g).empty());
  CHECK_FALSE(parse_connection_filter("limit=abc", g).empty());
  CHECK_FALSE(parse_connection_filter("rout=chat", g).empty());
}

TEST_CASE("connections JSON: filter, order by age, limit, escaping") {
  std::vector<ConnectionInfo> rows(3);
  rows[0].id = 1;
  rows[0].labels.route = "chat";
  rows[0].labels.server = "a:1";
  rows[0].age_seconds = 1;
  rows[1].id = 2;
  rows[1].labels.route = "chat";
  rows[1].labels.server = "b:1";
  rows[1].age_seconds = 5;
  rows[1].subprotocol = "v1\"x";
  rows[1].client_to_upstream.count_frame(0x1, 2);
  rows[1].client_to_upstream.count_payload(0x1, 40);
  rows[1].buffered_bytes = 7;
  rows[2].id = 3;
  rows[2].labels.route = "feed";
  rows[2].age_seconds = 9;

  ConnectionFilter chat;
  chat.route = "chat";
  const std::string all_chat = connections_json(rows, chat);
  CHECK(all_chat.rfind(R"({"count":2,"returned":2,"connections":[{"id":"0-2")", 0) == 0);
  CHECK(all_chat.find(R"("subprotocol":"v1\"x")") != std::string::npos);
  CHECK(all_chat.find(R"("client_to_upstream":{"bytes":42,"frames":1,"messages":0)") !=
        std::string::npos);
  CHECK(all_chat.find(R"("buffered_bytes":7)") != std::string::npos);
  CHECK(all_chat.find(R"("id":"0-3")") == std::string::npos);

  ConnectionFilter limited;
  limited.limit = 1;
  const std::string one = connections_json(rows, limited);
  CHECK(one.rfind(R"({"count":3,"returned":1,"connections":[{"id":"0-3")", 0) == 0);

  ConnectionFilter by_server;
  by_server.server = "a:1";
  CHECK(connections_json(rows, by_server).rfind(R"({"count":1,)", 0) == 0);
}

TEST_CASE("JSON strings escape quotes, backslashes and controls") {
  std::string out;
  append_json_string(out, "a\"b\\c\n\x01");
  CHECK(out == R"("a\"b\\c\n\u0001")");
}
