// Chooses the route for a request from its Host and path (the config's [[route]]s).
#pragma once

#include <string>
#include <string_view>

#include "conf/config.h"

namespace wsgate::gateway {

// The Host header's name part, lowercased, without the port ("Example.com:8080" ->
// "example.com", "[::1]:80" -> "[::1]").
std::string normalize_host(std::string_view host_header);

// The path of a request-target without its query ("/echo?x=1" -> "/echo"); for the
// absolute form ("http://h/p") the path part. Empty when the target has no path.
std::string_view target_path(std::string_view target);

// The most specific route: an exact host beats "*.suffix" (longest suffix first), which
// beats "*"; among those, the longest path prefix matched on a segment boundary
// ("/echo" matches "/echo", "/echo/x", not "/echoes"). nullptr when none matches.
const conf::Route* match_route(const conf::Config& config, std::string_view host,
                               std::string_view path);

}  // namespace wsgate::gateway
