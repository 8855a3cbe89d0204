// The admin endpoints that close WebSockets (served by metrics/admin/admin_server.cc):
//   POST /connections/<id>/close                          one connection, by its id in
//                                                         /connections ("<worker>-<n>")
//   POST /upstreams/<name>/servers/<address>/close        every connection of one server
// Both take ?code=N (default 1001) and ?reason=TEXT (default "closed by the
// administrator"). Parsing and checking only: pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::metrics {

struct CloseRequest {
  enum class Target { Connection, Server };
  Target target = Target::Connection;
  int worker = 0;        // Connection: "<worker>-<n>"
  std::uint64_t id = 0;  // Connection
  std::string upstream;  // Server: the [[upstream]] name
  std::string server;    // Server: "host:port" as /connections and /metrics show it
  std::uint16_t code = 1001;
  std::string reason = "closed by the administrator";
};

// RFC 6455 7.4.1 / 7.4.2: the codes an administrator may have the gateway send: 1000
// (normal), 1001 (going away), 1008 (policy), 1011 (internal error), and 3000-4999
// (registered and private use). 1005/1006/1015 never go on the wire; the rest describe a
// peer's protocol error, which a close on request is not.
bool is_admin_close_code(std::uint32_t code);

// RFC 6455 5.5: a Close payload is at most 125 bytes, 2 of them the code.
inline constexpr std::size_t kMaxCloseReasonBytes = 123;

// Whether `path` names a close endpoint; when it does, fills `out` (target, ids, names,
// percent-decoded) and returns "" or a one-line error for a malformed id.
// nullopt: not a close endpoint.
std::optional<std::string> parse_close_path(std::string_view path, CloseRequest& out);

// "code=N&reason=TEXT" (both optional, form-encoded): sets out.code / out.reason.
// Returns "" or a one-line error (unknown parameter, bad code, reason too long or not
// UTF-8).
std::string parse_close_query(std::string_view query, CloseRequest& out);

// Valid UTF-8 (RFC 3629): the reason of a Close must be (RFC 6455 5.5.1).
bool is_valid_utf8(std::string_view s);

}  // namespace wsgate::metrics
