#include "gateway/exchange/forwarded_client.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "conf/config_connect.h"

using wsgate::gateway::DownstreamFacts;
using wsgate::gateway::forwarded_client;
using wsgate::gateway::with_forwarded_client;

namespace {

std::vector<wsgate::conf::IpNetwork> nets(std::initializer_list<const char*> texts) {
  std::vector<wsgate::conf::IpNetwork> out;
  for (const char* t : texts) out.push_back(*wsgate::conf::detail::parse_cidr(t));
  return out;
}

wsgate::http::RequestHead with_xff(std::initializer_list<const char*> values) {
  wsgate::http::RequestHead r;
  r.fields.push_back({"Origin", "https://a.example"});
  for (const char* v : values) r.fields.push_back({"X-Forwarded-For", v});
  return r;
}

}  // namespace

TEST_CASE("forwarded client: only a trusted peer's header is believed") {
  const auto trusted = nets({"10.0.0.0/8"});
  CHECK(forwarded_client("10.1.2.3", with_xff({"203.0.113.9"}), trusted) == "203.0.113.9");
  CHECK_FALSE(forwarded_client("192.0.2.1", with_xff({"203.0.113.9"}), trusted));
  CHECK_FALSE(forwarded_client("10.1.2.3", with_xff({"203.0.113.9"}), {}));
  CHECK_FALSE(forwarded_client("10.1.2.3", with_xff({}), trusted));
}

TEST_CASE("forwarded client: the last untrusted address, read from the right") {
  const auto trusted = nets({"10.0.0.0/8", "fd00::/8"});
  // A client may write anything on the left: only the trusted hops' additions count.
  CHECK(forwarded_client("10.0.0.1", with_xff({"1.1.1.1, 203.0.113.9, 10.9.9.9"}), trusted) ==
        "203.0.113.9");
  // Several fields are one list, in order.
  CHECK(forwarded_client("10.0.0.1", with_xff({"1.1.1.1", "203.0.113.9,10.9.9.9"}), trusted) ==
        "203.0.113.9");
  // Every hop trusted: the leftmost.
  CHECK(forwarded_client("10.0.0.1", with_xff({"10.0.0.7, 10.9.9.9"}), trusted) == "10.0.0.7");
  // Ports and brackets, IPv6 in canonical text.
  CHECK(forwarded_client("fd00::1", with_xff({"[2001:DB8::7]:5000"}), trusted) == "2001:db8::7");
  CHECK(forwarded_client("fd00::1", with_xff({"203.0.113.9:5000"}), trusted) == "203.0.113.9");
  CHECK(forwarded_client("fd00::1", with_xff({"2001:db8::7"}), trusted) == "2001:db8::7");
  // Garbage ends the walk: the trusted address right of it stands.
  CHECK(forwarded_client("10.0.0.1", with_xff({"unknown, 10.9.9.9"}), trusted) == "10.9.9.9");
  CHECK_FALSE(forwarded_client("10.0.0.1", with_xff({"10.0.0.5, _hidden"}), trusted));
  CHECK_FALSE(forwarded_client("10.0.0.1", with_xff({""}), trusted));
}

TEST_CASE("forwarded client: the facts name the client, via the proxy") {
  DownstreamFacts f;
  f.client_ip = "10.0.0.1";
  f.client_addr = "10.0.0.1:40000";
  const DownstreamFacts out = with_forwarded_client(f, with_xff({"203.0.113.9"}), {});
  CHECK(out.client_ip == "10.0.0.1");
  CHECK(out.via.empty());
  const DownstreamFacts g =
      with_forwarded_client(f, with_xff({"203.0.113.9"}), nets({"10.0.0.0/8"}));
  CHECK(g.client_ip == "203.0.113.9");
  CHECK(g.client_addr == "203.0.113.9");
  CHECK(g.via == "10.0.0.1:40000");
  CHECK(g.forwarded_for_hop() == "10.0.0.1");
  CHECK(f.forwarded_for_hop() == "10.0.0.1");
}
