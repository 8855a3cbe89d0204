#include "metrics/access_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <ctime>

#include "metrics/connection_table.h"

namespace wsgate::metrics {
namespace {

// logfmt: bare when the value has no space, quote or '=', else quoted and escaped.
void append_value(std::string& out, std::string_view v) {
  if (v.empty()) {
    out += "\"\"";
    return;
  }
  if (v.find_first_of(" \"=\\") == std::string_view::npos) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

void field(std::string& out, std::string_view key, std::string_view value) {
  out += ' ';
  out += key;
  out += '=';
  append_value(out, value);
}

void field(std::string& out, std::string_view key, unsigned long long value) {
  out += ' ';
  out += key;
  out += '=';
  out += std::to_string(value);
}

// "2026-11-21T20:00:00.000Z", now.
std::string timestamp() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm utc{};
  gmtime_r(&tv.tv_sec, &utc);
  char ts[40];
  const std::size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(ts + n, sizeof(ts) - n, ".%03dZ", static_cast<int>(tv.tv_usec / 1000));
  return ts;
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

std::string format_access_json(const AccessRecord& r) {
  std::string out = "{";
  out.reserve(400);
  json_field(out, "ts", timestamp());
  json_field(out, "client", r.client);
  json_field(out, "listener", r.listener);
  json_field(out, "route", r.route);
  json_field(out, "upstream", r.upstream);
  json_field(out, "status", static_cast<unsigned long long>(r.status));
  json_field(out, "duration_ms", static_cast<unsigned long long>(r.duration_ms));
  const ConnectionStats empty;
  const ConnectionStats& s = r.stats != nullptr ? *r.stats : empty;
  json_field(out, "c2u_bytes", s.client_to_upstream.bytes);
  json_field(out, "c2u_msgs", s.client_to_upstream.messages);
  json_field(out, "u2c_bytes", s.upstream_to_client.bytes);
  json_field(out, "u2c_msgs", s.upstream_to_client.messages);
  if (r.stats != nullptr) {
    json_field(out, "close_code", s.close_code);
    json_field(out, "closed_by", to_string(s.closed_by));
  } else {
    out += ",\"close_code\":null,\"closed_by\":null";
  }
  if (!r.tls_version.empty()) json_field(out, "tls", r.tls_version);
  if (!r.client_subject.empty()) json_field(out, "client_cert", r.client_subject);
  std::string_view reason = r.reason;
  if (reason.empty() && r.stats != nullptr) reason = s.close_reason;
  if (!reason.empty()) json_field(out, "reason", reason);
  out += "}\n";
  return out;
}

std::string format_access_line(const AccessRecord& r) {
  const std::string ts = timestamp();
  std::string out = "access";
  out.reserve(320);
  field(out, "ts", ts);
  field(out, "client", r.client);
  field(out, "listener", r.listener);
  field(out, "route", r.route);
  field(out, "upstream", r.upstream);
  field(out, "status", static_cast<unsigned long long>(r.status));
  field(out, "duration_ms", static_cast<unsigned long long>(r.duration_ms));
  const ConnectionStats empty;
  const ConnectionStats& s = r.stats != nullptr ? *r.stats : empty;
  field(out, "c2u_bytes", s.client_to_upstream.bytes);
  field(out, "c2u_msgs", s.client_to_upstream.messages);
  field(out, "u2c_bytes", s.upstream_to_client.bytes);
  field(out, "u2c_msgs", s.upstream_to_client.messages);
  if (r.stats != nullptr) {
    field(out, "close_code", s.close_code);
    field(out, "closed_by", to_string(s.closed_by));
  } else {
    field(out, "close_code", "-");
    field(out, "closed_by", "-");
  }
  if (!r.protocol.empty()) field(out, "proto", r.protocol);
  if (!r.tls_version.empty()) field(out, "tls", r.tls_version);
  if (!r.client_subject.empty()) field(out, "client_cert", r.client_subject);
  std::string_view reason = r.reason;
  if (reason.empty() && r.stats != nullptr) reason = s.close_reason;
  if (!reason.empty()) field(out, "reason", reason);
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
