#include "conf/config_connect.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "conf/config_validate.h"
#include "conf/units.h"

namespace wsgate::conf::detail {
namespace {

constexpr std::string_view kConnectKeys[] = {"allow",           "user",         "resolve_timeout",
                                             "connect_timeout", "idle_timeout", "buffer_size"};
constexpr std::string_view kAllowKeys[] = {"host", "cidr", "ports"};
constexpr std::string_view kUserKeys[] = {"name", "password_hash"};
constexpr auto kPortForm = R"(a port (443) or a range ("8000-8100"))";

std::optional<uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  const auto [rest, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || rest != end || value < 1 || value > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(value);
}

// "*", "name", "*.suffix" with a DNS name after the wildcard.
bool is_host_pattern(std::string_view host) {
  if (host == "*") return true;
  if (host.starts_with("*.")) host.remove_prefix(2);
  return is_host_name(host);
}

std::vector<PortRange> read_ports(const TableReader& r) {
  r.require("ports");
  const toml::node* node = r.find("ports");
  const toml::array* array = node->as_array();
  if (array == nullptr || array->empty())
    r.fail_expected("ports", std::string("a non-empty array, each element ") + kPortForm);
  std::vector<PortRange> ports;
  for (const toml::node& element : *array) {
    std::optional<PortRange> range;
    if (const auto* i = element.as_integer()) {
      if (const auto p = parse_port(std::to_string(i->get()))) range = PortRange{*p, *p};
    } else if (const auto* s = element.as_string()) {
      const std::string_view text = s->get();
      const auto dash = text.find('-');
      const auto first = parse_port(text.substr(0, dash));
      const auto last = dash == std::string_view::npos ? first : parse_port(text.substr(dash + 1));
      if (first && last && *first <= *last) range = PortRange{*first, *last};
    }
    if (!range)
      r.fail_at(element.source(), "connect.allow.ports: expected " + std::string(kPortForm) +
                                      " with ports 1..65535, got " + describe(element));
    ports.push_back(*range);
  }
  return ports;
}

ConnectRule read_rule(const std::string& file, const toml::table& table) {
  const TableReader r(file, table, "connect.allow", kAllowKeys);
  ConnectRule rule;
  rule.where = r.position();
  const bool has_host = r.find("host") != nullptr;
  const bool has_cidr = r.find("cidr") != nullptr;
  if (has_host == has_cidr)
    r.fail_at(table.source(), "[[connect.allow]]: give exactly one of host or cidr");
  if (r.string("host", &rule.host) && !is_host_pattern(rule.host = lowercase(rule.host)))
    r.fail_expected("host", R"(a host name like "example.com", "*.example.com" or "*")",
                    is_ip_literal(rule.host) ? " (addresses take cidr = \"...\")" : "");
  std::string cidr;
  if (r.string("cidr", &cidr) && !(rule.network = parse_cidr(cidr)))
    r.fail_expected("cidr", R"(a network like "10.0.0.0/8", "fd00::/8" or an address)");
  rule.ports = read_ports(r);
  return rule;
}

ConnectUser read_user(const std::string& file, const toml::table& table) {
  const TableReader r(file, table, "connect.user", kUserKeys);
  ConnectUser user;
  user.where = r.position();
  r.require("name");
  r.require("password_hash");
  // RFC 7617 2: the user-id cannot contain a colon.
  if (r.string("name", &user.name) &&
      (user.name.empty() || user.name.find_first_of(":\r\n") != std::string::npos))
    r.fail_expected("name", "a non-empty user name without ':'");
  if (r.string("password_hash", &user.password_hash) && !is_password_hash(user.password_hash))
    r.fail_at(r.find("password_hash")->source(),  // a secret's hash: not echoed
              "connect.user.password_hash: expected the output of wsgate --hash-password "
              "(pbkdf2-sha256$<iterations>$<salt>$<hash>)");
  return user;
}

bool is_base64(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
  });
}

}  // namespace

std::optional<IpNetwork> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const std::string address(text.substr(0, slash));
  IpNetwork net;
  if (inet_pton(AF_INET, address.c_str(), net.address.data()) == 1) {
    net.family = AF_INET;
    net.prefix = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), net.address.data()) == 1) {
    net.family = AF_INET6;
    net.prefix = 128;
  } else {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    int prefix = -1;
    const auto [rest, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || rest != p.data() + p.size() || prefix < 0 ||
        prefix > net.prefix)
      return std::nullopt;
    net.prefix = prefix;
  }
  // Host bits beyond the prefix are a typo more often than not ("10.0.0.1/8").
  const int bytes = net.family == AF_INET ? 4 : 16;
  for (int bit = net.prefix; bit < bytes * 8; ++bit)
    if ((net.address[static_cast<std::size_t>(bit / 8)] >> (7 - bit % 8)) & 1) return std::nullopt;
  return net;
}

bool is_password_hash(std::string_view text) {
  constexpr std::string_view kScheme = "pbkdf2-sha256$";
  if (!text.starts_with(kScheme)) return false;
  text.remove_prefix(kScheme.size());
  const auto d1 = text.find('$');
  if (d1 == std::string_view::npos) return false;
  unsigned iterations = 0;
  const auto [rest, ec] = std::from_chars(text.data(), text.data() + d1, iterations);
  if (ec != std::errc() || rest != text.data() + d1 || iterations < 1000 || iterations > 10000000)
    return false;
  const std::string_view tail = text.substr(d1 + 1);
  const auto d2 = tail.find('$');
  if (d2 == std::string_view::npos) return false;
  return is_base64(tail.substr(0, d2)) && is_base64(tail.substr(d2 + 1));
}

Connect read_connect(const std::string& file, const toml::table& table) {
  const TableReader r(file, table, "connect", kConnectKeys, /*single_table=*/true);
  Connect c;
  c.where = r.position();
  if (r.find("allow") != nullptr)
    for (const toml::table* t : r.tables("allow")) c.allow.push_back(read_rule(file, *t));
  if (r.find("user") != nullptr) {
    std::map<std::string, int> names;
    for (const toml::table* t : r.tables("user")) {
      ConnectUser user = read_user(file, *t);
      const auto [it, inserted] = names.emplace(user.name, user.where.line);
      if (!inserted)
        throw ConfigError{file, user.where.line, user.where.column,
                          "duplicate connect.user name " + quoted(user.name) +
                              " (first defined at line " + std::to_string(it->second) + ")"};
      c.users.push_back(std::move(user));
    }
  }
  r.duration("resolve_timeout", &c.resolve_timeout, /*must_be_positive=*/true);
  r.duration("connect_timeout", &c.connect_timeout, /*must_be_positive=*/true);
  r.duration("idle_timeout", &c.idle_timeout, /*must_be_positive=*/true);
  r.size("buffer_size", &c.buffer_size, 4 * kKiB, 64 * kMiB);
  return c;
}

}  // namespace wsgate::conf::detail
