// [limits]: how many connections the process and each client address may hold, and how
// fast a client may open new ones. Every limit is off until set; see docs/configuration.md.
#include "conf/config_limits.h"

#include <cmath>

#include "conf/config_validate.h"

namespace wsgate::conf::detail {
namespace {

constexpr std::string_view kLimitsKeys[] = {
    "max_connections",       "max_connections_per_client", "new_connections_per_second_per_client",
    "new_connections_burst", "client_ipv6_prefix",         "client_table_size"};

constexpr double kMaxRate = 1'000'000;

}  // namespace

Limits read_limits(const std::string& file, const toml::table& table) {
  const TableReader r(file, table, "limits", kLimitsKeys, /*single_table=*/true);
  Limits limits;
  limits.where = r.position();
  r.integer("max_connections", &limits.max_connections, 0, 100'000'000);
  r.integer("max_connections_per_client", &limits.max_connections_per_client, 0, 10'000'000);
  constexpr std::string_view kRate = "new_connections_per_second_per_client";
  if (const toml::node* rate = r.find(kRate)) {
    // A rate may be fractional ("one every 10 s" is 0.1), so integers and floats both do.
    const std::optional<double> value = rate->value<double>();
    if (!(rate->is_integer() || rate->is_floating_point()) || !value || !std::isfinite(*value) ||
        *value < 0 || *value > kMaxRate)
      r.fail_expected(kRate, "a number of connections per second in 0..1000000 (0: no limit)");
    limits.new_connections_per_second_per_client = *value;
  }
  if (r.find("new_connections_burst") != nullptr) {
    if (limits.new_connections_per_second_per_client == 0)
      r.fail_at(r.find("new_connections_burst")->source(),
                "limits.new_connections_burst: only with new_connections_per_second_per_client "
                "greater than 0");
    r.integer("new_connections_burst", &limits.new_connections_burst, 1, 10'000'000);
  } else if (limits.new_connections_per_second_per_client > 0) {
    // A burst below one token would refuse every connection.
    limits.new_connections_burst = static_cast<unsigned>(
        std::max(1.0, std::ceil(limits.new_connections_per_second_per_client)));
  }
  r.integer("client_ipv6_prefix", &limits.client_ipv6_prefix, 1, 128);
  r.integer("client_table_size", &limits.client_table_size, 64, 16'777'216);
  return limits;
}

}  // namespace wsgate::conf::detail
