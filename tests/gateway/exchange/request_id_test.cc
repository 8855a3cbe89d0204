#include "gateway/exchange/request_id.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "conf/config_connect.h"
#include "proxy/codec/upstream_request.h"

using namespace wsgate::gateway;

namespace {

std::vector<wsgate::conf::IpNetwork> nets(std::initializer_list<const char*> texts) {
  std::vector<wsgate::conf::IpNetwork> out;
  for (const char* t : texts) out.push_back(*wsgate::conf::detail::parse_cidr(t));
  return out;
}

wsgate::http::RequestHead with_id(const char* id) {
  wsgate::http::RequestHead r;
  r.method = "GET";
  r.authority = "a.example";
  r.path = "/";
  r.fields.push_back({"x-request-id", id});
  return r;
}

bool is_generated(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("request id: generated ids are 32 hex digits and differ") {
  std::set<std::string> seen;
  std::set<std::pair<std::size_t, char>> digits_at;  // (position, digit) seen
  for (int i = 0; i < 1000; ++i) {
    const std::string id = generate_request_id();
    CHECK(is_generated(id));
    seen.insert(id);
    for (std::size_t at = 0; at < id.size(); ++at) digits_at.insert({at, id[at]});
  }
  CHECK(seen.size() == 1000);
  // Every digit turns up at every position (1000 draws: missing one is a bug, not luck).
  CHECK(digits_at.size() == 32 * 16);
}

TEST_CASE("request id: only a trusted proxy's X-Request-Id is kept") {
  const auto trusted = nets({"10.0.0.0/8"});
  CHECK(choose_request_id("10.1.2.3", with_id("abc-123"), trusted) == "abc-123");
  // An untrusted peer, or no trusted_proxies at all: a new id.
  CHECK(is_generated(choose_request_id("192.0.2.1", with_id("abc-123"), trusted)));
  CHECK(is_generated(choose_request_id("10.1.2.3", with_id("abc-123"), {})));
  // Without the field, from a trusted peer too.
  wsgate::http::RequestHead none;
  CHECK(is_generated(choose_request_id("10.1.2.3", none, trusted)));
}

TEST_CASE("request id: a trusted proxy's malformed X-Request-Id is replaced") {
  const auto trusted = nets({"10.0.0.0/8"});
  CHECK(is_generated(choose_request_id("10.1.2.3", with_id(""), trusted)));
  CHECK(is_generated(choose_request_id("10.1.2.3", with_id("a b"), trusted)));
  CHECK(is_generated(choose_request_id("10.1.2.3", with_id("a\x01"), trusted)));
  CHECK(is_generated(choose_request_id("10.1.2.3", with_id("caf\xc3\xa9"), trusted)));
  CHECK(
      is_generated(choose_request_id("10.1.2.3", with_id(std::string(129, 'a').c_str()), trusted)));
  CHECK(choose_request_id("10.1.2.3", with_id(std::string(128, 'a').c_str()), trusted) ==
        std::string(128, 'a'));
}

TEST_CASE("request id: the upstream gets exactly one X-Request-Id, the chosen one") {
  wsgate::http::RequestHead r = with_id("forged");
  r.fields.push_back({"X-Request-ID", "forged-too"});
  set_request_id(r, "0123");
  const std::string head = wsgate::proxy::build_upstream_request(r, {"192.0.2.1", "http", ""}, "k");
  CHECK(head.find("X-Request-Id: 0123\r\n") != std::string::npos);
  CHECK(head.find("forged") == std::string::npos);
}
