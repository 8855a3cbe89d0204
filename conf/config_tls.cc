// [listener.tls] and [upstream.tls]: which files to load and how to speak TLS. The files
// themselves are loaded and checked by tls/ (wsgate --check-config does both).
#include <string>

#include "conf/config_validate.h"

namespace wsgate::conf::detail {
namespace {

constexpr std::string_view kListenerTlsKeys[] = {"certificates", "min_version", "ciphers",
                                                 "ciphersuites", "client_ca",   "client_auth"};
constexpr std::string_view kCertificateKeys[] = {"cert", "key", "ocsp"};
constexpr std::string_view kUpstreamTlsKeys[] = {"ca", "server_name", "verify", "cert", "key"};

bool non_empty_path(const TableReader& r, std::string_view key, std::string* out,
                    const std::string& file) {
  if (!r.string(key, out)) return false;
  if (out->empty()) r.fail_expected(key, "a file path");
  *out = resolve_path(file, *out);
  return true;
}

}  // namespace

std::string resolve_path(const std::string& config_file, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  const auto slash = config_file.rfind('/');
  return slash == std::string::npos ? path : config_file.substr(0, slash + 1) + path;
}

ListenerTls read_listener_tls(const std::string& file, const toml::table& table) {
  const TableReader r(file, table, "listener.tls", kListenerTlsKeys, /*single_table=*/true);
  ListenerTls tls;
  tls.where = r.position();
  r.require("certificates");
  for (const toml::table* entry : r.tables("certificates")) {
    const TableReader c(file, *entry, "listener.tls.certificates", kCertificateKeys);
    CertificateFiles files;
    files.where = c.position();
    c.require("cert");
    c.require("key");
    non_empty_path(c, "cert", &files.cert, file);
    non_empty_path(c, "key", &files.key, file);
    non_empty_path(c, "ocsp", &files.ocsp, file);
    tls.certificates.push_back(std::move(files));
  }
  std::string version;
  if (r.string("min_version", &version)) {
    if (version == "TLSv1.2") {
      tls.min_version = TlsVersion::Tls12;
    } else if (version == "TLSv1.3") {
      tls.min_version = TlsVersion::Tls13;
    } else {
      r.fail_expected("min_version", R"("TLSv1.2" or "TLSv1.3" (older versions are not offered))");
    }
  }
  r.string("ciphers", &tls.ciphers);
  r.string("ciphersuites", &tls.ciphersuites);
  non_empty_path(r, "client_ca", &tls.client_ca, file);
  std::string auth;
  if (r.string("client_auth", &auth)) {
    if (auth == "none") {
      tls.client_auth = ClientAuth::None;
    } else if (auth == "optional") {
      tls.client_auth = ClientAuth::Optional;
    } else if (auth == "required") {
      tls.client_auth = ClientAuth::Required;
    } else {
      r.fail_expected("client_auth", R"("none", "optional" or "required")");
    }
  }
  if (tls.client_auth != ClientAuth::None && tls.client_ca.empty())
    r.fail_expected("client_auth", "\"none\" when no client_ca is set",
                    " (client certificates need a CA to verify them)");
  return tls;
}

UpstreamTls read_upstream_tls(const std::string& file, const toml::table& table) {
  const TableReader r(file, table, "upstream.tls", kUpstreamTlsKeys, /*single_table=*/true);
  UpstreamTls tls;
  tls.where = r.position();
  non_empty_path(r, "ca", &tls.ca, file);
  r.string("server_name", &tls.server_name);
  r.boolean("verify", &tls.verify);
  const bool has_cert = non_empty_path(r, "cert", &tls.cert, file);
  const bool has_key = non_empty_path(r, "key", &tls.key, file);
  if (has_cert != has_key)
    r.fail_expected(has_cert ? "cert" : "key", "both cert and key, or neither");
  return tls;
}

}  // namespace wsgate::conf::detail
