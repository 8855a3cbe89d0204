// The built-in live dashboard served at "/": one self-contained HTML page (inline CSS
// and JS, no external assets) compiled into the binary. It polls /metrics (for the
// connection count and the message/byte rates it graphs on a canvas) and /connections
// (for the table) once a second. When the admin token is set, the page asks for it and
// sends it as a bearer token; the page itself holds no data.
#pragma once

#include <string_view>

namespace wsgate::metrics {

std::string_view dashboard_html();

}  // namespace wsgate::metrics
