// Reading one [[upstream]] table: its servers (strings or inline tables with pool
// options), balancer, hash key, retries, passive ejection and [upstream.health_check].
// Internal to the loader; every problem throws ConfigError at the value at fault.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "conf/config_validate.h"

namespace wsgate::conf::detail {

extern const std::span<const std::string_view> kUpstreamKeys;

// Everything of the table but the uniqueness of its name, which the loader checks.
// `r` must have been made with kUpstreamKeys.
Upstream read_upstream(const std::string& file, const TableReader& r);

// [upstream.rebalance] of the upstream `r` reads (config_rebalance.cc); absent: off.
void read_rebalance(const std::string& file, const TableReader& r, Upstream* upstream);

}  // namespace wsgate::conf::detail
