#include "gateway/exchange/forwarded_client.h"

#include "proxy/connect/connect_acl.h"

namespace wsgate::gateway {
namespace {

namespace acl = proxy::connect;

bool trusted_address(const acl::Address& a, const std::vector<conf::IpNetwork>& trusted) {
  for (const conf::IpNetwork& net : trusted)
    if (acl::network_contains(net, a)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "192.0.2.7", "192.0.2.7:5000", "2001:db8::7", "[2001:db8::7]", "[2001:db8::7]:5000".
std::optional<acl::Address> entry_address(std::string_view entry) {
  if (auto a = acl::parse_address(entry)) return a;
  if (entry.starts_with('[')) {
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return acl::parse_address(entry.substr(1, close - 1));
  }
  const auto colon = entry.find(':');
  if (colon == std::string_view::npos || entry.find(':', colon + 1) != std::string_view::npos)
    return std::nullopt;
  auto a = acl::parse_address(entry.substr(0, colon));
  if (a && a->family != AF_INET) return std::nullopt;
  return a;
}

}  // namespace

bool is_trusted_proxy(std::string_view peer_ip, const std::vector<conf::IpNetwork>& trusted) {
  if (trusted.empty()) return false;
  const auto peer = acl::parse_address(peer_ip);
  return peer && trusted_address(*peer, trusted);
}

std::optional<std::string> forwarded_client(std::string_view peer_ip,
                                            const http::RequestHead& request,
                                            const std::vector<conf::IpNetwork>& trusted) {
  if (!is_trusted_proxy(peer_ip, trusted)) return std::nullopt;
  // Every X-Forwarded-For field, in order, is one list (RFC 9110 5.3).
  std::vector<std::string_view> entries;
  for (const http::Field& f : request.fields) {
    if (!http::iequals(f.name, "x-forwarded-for")) continue;
    std::string_view v = f.value;
    while (true) {
      const auto comma = v.find(',');
      entries.push_back(trim(v.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  std::optional<acl::Address> client;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const auto a = entry_address(*it);
    if (!a) break;
    client = a;
    if (!trusted_address(*a, trusted)) break;
  }
  if (!client) return std::nullopt;
  return acl::to_string(*client);
}

DownstreamFacts with_forwarded_client(const DownstreamFacts& facts,
                                      const http::RequestHead& request,
                                      const std::vector<conf::IpNetwork>& trusted) {
  // One copy, returned in place (the exchange's member); the checks only with trusted
  // proxies configured.
  DownstreamFacts out = facts;
  if (trusted.empty()) return out;
  if (auto client = forwarded_client(facts.client_ip, request, trusted)) {
    out.via = facts.client_addr;
    out.xff_hop = facts.client_ip;
    out.client_ip = *client;
    out.client_addr = std::move(*client);
  }
  return out;
}

}  // namespace wsgate::gateway
