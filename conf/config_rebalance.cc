// [upstream.rebalance]: opt-in shedding of the connections an overloaded server holds
// beyond its fair share (proxy/upstream/rebalancer.h). Internal to the loader.
#include <cmath>
#include <cstdio>
#include <string>

#include "conf/config_upstream.h"

namespace wsgate::conf::detail {
namespace {

constexpr std::string_view kRebalanceKeys[] = {"factor", "interval", "max_per_second"};

}  // namespace

void read_rebalance(const std::string& file, const TableReader& r, Upstream* upstream) {
  const toml::table* table = r.table("rebalance");
  if (table == nullptr) return;
  const TableReader b(file, *table, "upstream.rebalance", kRebalanceKeys, /*single_table=*/true);
  Upstream::Rebalance& rb = upstream->rebalance;
  rb.enabled = true;
  if (const toml::node* factor = b.find("factor")) {
    // A factor below 1 would shed servers that hold no more than their share.
    constexpr auto kExpected = "a number from 1.0 to 100 like 1.2";
    if (!factor->is_number()) b.fail_expected("factor", kExpected);
    rb.factor = factor->value<double>().value_or(0);
    if (!std::isfinite(rb.factor) || rb.factor < 1.0 || rb.factor > 100) {
      char shown[32];
      std::snprintf(shown, sizeof shown, "%g", rb.factor);
      b.fail_at(factor->source(),
                std::string("upstream.rebalance.factor: expected ") + kExpected + ", got " + shown);
    }
  }
  b.duration("interval", &rb.interval, /*must_be_positive=*/true);
  b.integer("max_per_second", &rb.max_per_second, 1, 100000);
}

}  // namespace wsgate::conf::detail
