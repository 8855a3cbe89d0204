// The key the hash balancer hashes, taken from a request as an upstream's hash_key says:
// the client IP, a header's value, a cookie's value or a query parameter's value. A
// pure function of the request (no I/O), unit-tested in tests/proxy/hash_key_test.cc.
#pragma once

#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/codec/request_head.h"

namespace wsgate::proxy {

// The key's text. When the request has no such header, cookie or parameter, the client
// IP is the key (so such clients are still sticky, by address).
std::string hash_key_text(const conf::HashKey& key, std::string_view client_ip,
                          const http::RequestHead& request);

}  // namespace wsgate::proxy
