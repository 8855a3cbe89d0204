#include "metrics/access_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <ctime>
#include <type_traits>

#include "metrics/admin/connection_table.h"
#include "metrics/log.h"
#include "metrics/text_escape.h"

namespace wsgate::metrics {
namespace {

void field(std::string& out, std::string_view key, std::string_view value) {
  out += ' ';
  out += key;
  out += '=';
  append_logfmt_value(out, value);  // escaped: a client cannot forge a line
}

void field(std::string& out, std::string_view key, unsigned long long value) {
  out += ' ';
  out += key;
  out += '=';
  out += std::to_string(value);
}

void json_field(std::string& out, std::string_view key, std::string_view value) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += key;
  out += "\":";
  append_json_string(out, value);
}

void json_field(std::string& out, std::string_view key, unsigned long long value) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += key;
  out += "\":";
  out += std::to_string(value);
}

}  // namespace

namespace {

// Every field of an access line, in order, for both formats: `emit(key, value)` with a
// string_view, an unsigned number, or nullptr for "no value" ("-" in text, null in JSON).
template <class Emit>
void for_each_field(const AccessRecord& r, Emit&& emit) {
  emit("ts", std::string_view(log::utc_timestamp()));
  emit("client", r.client);
  emit("listener", r.listener);
  emit("route", r.route);
  emit("upstream", r.upstream);
  emit("status", static_cast<unsigned long long>(r.status));
  emit("duration_ms", static_cast<unsigned long long>(r.duration_ms));
  const ConnectionStats empty;
  const ConnectionStats& s = r.stats != nullptr ? *r.stats : empty;
  emit("c2u_bytes", static_cast<unsigned long long>(s.client_to_upstream.bytes));
  emit("c2u_msgs", static_cast<unsigned long long>(s.client_to_upstream.messages));
  emit("u2c_bytes", static_cast<unsigned long long>(s.upstream_to_client.bytes));
  emit("u2c_msgs", static_cast<unsigned long long>(s.upstream_to_client.messages));
  if (s.tunnel_end) {
    // A tunnel has no close code: how it ended instead.
    emit("close_code", nullptr);
    emit("closed_by", std::string_view(to_string(s.closed_by)));
    emit("tunnel_end", std::string_view(to_string(*s.tunnel_end)));
  } else if (r.stats != nullptr && !r.http) {
    emit("close_code", static_cast<unsigned long long>(s.close_code));
    emit("closed_by", std::string_view(to_string(s.closed_by)));
  } else {
    emit("close_code", nullptr);
    emit("closed_by", nullptr);
  }
  // The gateway's keepalive pings, when the route has them: the last round trip (us).
  if (s.client_pings.sent > 0)
    emit("client_ping_rtt_us", static_cast<unsigned long long>(s.client_pings.last_rtt_us));
  if (s.upstream_pings.sent > 0)
    emit("upstream_ping_rtt_us", static_cast<unsigned long long>(s.upstream_pings.last_rtt_us));
  if (!r.protocol.empty()) emit("proto", r.protocol);
  if (!r.tls_version.empty()) emit("tls", r.tls_version);
  if (!r.client_subject.empty()) emit("client_cert", r.client_subject);
  if (!r.target.empty()) emit("target", r.target);
  if (!r.user.empty()) emit("user", r.user);
  if (!r.via.empty()) emit("via", r.via);
  if (!r.proxy_sni.empty()) emit("proxy_sni", r.proxy_sni);
  if (!r.proxy_alpn.empty()) emit("proxy_alpn", r.proxy_alpn);
  if (r.http) emit("method", r.method);
  if (!r.path.empty()) emit("path", r.path);
  if (!r.host.empty()) emit("host", r.host);
  if (!r.user_agent.empty()) emit("user_agent", r.user_agent);
  if (!r.origin.empty()) emit("origin", r.origin);
  if (!r.subprotocol.empty()) emit("subprotocol", r.subprotocol);
  if (!r.request_id.empty()) emit("request_id", r.request_id);
  std::string_view reason = r.reason;
  if (reason.empty() && r.stats != nullptr) reason = s.close_reason;
  if (!reason.empty()) emit("reason", reason);
}

}  // namespace

std::string format_access_json(const AccessRecord& r) {
  std::string out = "{";
  out.reserve(400);
  for_each_field(r, [&out](std::string_view key, auto value) {
    if constexpr (std::is_same_v<decltype(value), std::nullptr_t>) {
      out += out.size() > 1 ? ",\"" : "\"";
      out += key;
      out += "\":null";
    } else {
      json_field(out, key, value);
    }
  });
  out += "}\n";
  return out;
}

std::string format_access_line(const AccessRecord& r) {
  std::string out = "access";
  out.reserve(320);
  for_each_field(r, [&out](std::string_view key, auto value) {
    if constexpr (std::is_same_v<decltype(value), std::nullptr_t>) {
      field(out, key, std::string_view("-"));
    } else {
      field(out, key, value);
    }
  });
  out += '\n';
  return out;
}

bool AccessLog::open(const std::string& target, AccessLogFormat format) {
  format_ = format;
  if (target.empty()) return true;
  if (target == "-") {
    fd_ = STDOUT_FILENO;
    return true;
  }
  if (target == "stderr") {  // next to the error log, e.g. under a process supervisor
    fd_ = STDERR_FILENO;
    return true;
  }
  path_ = target;
  fd_ = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  owned_ = fd_ >= 0;
  return fd_ >= 0;
}

bool AccessLog::reopen() {
  if (!owned_) return true;
  const int fresh = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fresh < 0) return false;
  // dup2 swaps the open file behind fd_ atomically: workers keep using the same number.
  const bool ok = dup3(fresh, fd_, O_CLOEXEC) >= 0;
  ::close(fresh);
  return ok;
}

AccessLog::~AccessLog() {
  if (owned_) ::close(fd_);
}

void AccessLog::write(const AccessRecord& r) const {
  if (fd_ < 0) return;
  const std::string line =
      format_ == AccessLogFormat::Json ? format_access_json(r) : format_access_line(r);
  ssize_t ignored = ::write(fd_, line.data(), line.size());
  (void)ignored;
}

}  // namespace wsgate::metrics
