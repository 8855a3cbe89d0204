// A [[route]]'s keepalive pings (ping_interval, ping_timeout, ping_to) and its client
// message rate limit (max_message_rate, max_message_burst). Every problem is reported at
// the value at fault.
#include <string>

#include "conf/config_validate.h"

namespace wsgate::conf::detail {
namespace {

void read_pings(const TableReader& r, Route* route) {
  r.duration("ping_interval", &route->ping_interval, /*must_be_positive=*/false);
  r.duration("ping_timeout", &route->ping_timeout, /*must_be_positive=*/true);
  std::string to;
  if (r.string("ping_to", &to)) {
    if (to == "client") {
      route->ping_to = Route::PingTo::Client;
    } else if (to == "upstream") {
      route->ping_to = Route::PingTo::Upstream;
    } else if (to == "both") {
      route->ping_to = Route::PingTo::Both;
    } else {
      r.fail_expected("ping_to", R"(one of: "client", "upstream", "both")");
    }
  }
  if (route->ping_interval.count() == 0) {
    // Pings are off: a timeout or target for them would silently do nothing.
    for (const char* key : {"ping_timeout", "ping_to"})
      if (const toml::node* node = r.find(key))
        r.fail_at(node->source(),
                  std::string("route.") + key +
                      ": has no effect without route.ping_interval (pings are off)");
    return;
  }
  // Pongs count as activity, but the first ping must come before the idle timeout ends
  // the connection, or pings never keep anything alive.
  if (route->ping_interval >= route->idle_timeout)
    r.fail_at(r.find("ping_interval")->source(),
              "route.ping_interval: must be shorter than route.idle_timeout (" +
                  std::to_string(route->idle_timeout.count()) + "ms)");
}

void read_message_rate(const TableReader& r, Route* route) {
  r.integer("max_message_rate", &route->max_message_rate, 0, 1'000'000);
  r.integer("max_message_burst", &route->max_message_burst, 1, 10'000'000);
  if (route->max_message_rate == 0 && r.find("max_message_burst") != nullptr)
    r.fail_at(r.find("max_message_burst")->source(),
              "route.max_message_burst: has no effect without route.max_message_rate");
}

}  // namespace

void read_route_keepalive(const TableReader& r, Route* route) {
  read_pings(r, route);
  read_message_rate(r, route);
}

}  // namespace wsgate::conf::detail
