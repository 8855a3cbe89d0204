// The HTTP answer to a connection that a limit refused (gateway/client_limits.h):
// 429 Too Many Requests (RFC 6585 4) for a client's own limits, 503 Service Unavailable
// when the process is full; both with Retry-After (RFC 9110 10.2.3) and a one-line reason
// that names the limit.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "gateway/client_limits.h"
#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

// `decision` must be refused().
http::Refusal refusal_for(const ClientLimits::Decision& decision, const conf::Limits& limits);

}  // namespace wsgate::gateway
