// Certificates are made here, at test time, with OpenSSL's API: no key is committed.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tls/certificate.h"
#include "tls/server_context.h"

using namespace wsgate;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/wsgate-tls-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

EVP_PKEY* make_key(bool ec) {
  return ec ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
            : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
}

// A self-signed certificate for `cn` with DNS SANs `sans` (comma-separated "DNS:x"),
// valid from `from_days` to `to_days` relative to now.
void write_cert(const std::string& cert_path, const std::string& key_path, EVP_PKEY* key,
                const std::string& cn, const std::string& sans, long from_days, long to_days) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (!sans.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, sans.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  FILE* f = std::fopen(cert_path.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
}

}  // namespace

TEST_CASE("a matching pair loads, with its DNS names") {
  TempDir dir;
  EVP_PKEY* key = make_key(true);
  write_cert(dir.file("a.pem"), dir.file("a.key"), key, "a.test", "DNS:A.test,DNS:*.a.test", -1,
             30);
  tls::LoadedCertificate cert;
  std::string error;
  REQUIRE(tls::load_certificate(dir.file("a.pem"), dir.file("a.key"), "", cert, error));
  CHECK(cert.names == std::vector<std::string>{"a.test", "*.a.test"});
  CHECK(cert.key_type == EVP_PKEY_EC);
  EVP_PKEY_free(key);
}

TEST_CASE("the CN counts only without DNS names") {
  TempDir dir;
  EVP_PKEY* key = make_key(true);
  write_cert(dir.file("c.pem"), dir.file("c.key"), key, "cn.test", "", -1, 30);
  tls::LoadedCertificate cert;
  std::string error;
  REQUIRE(tls::load_certificate(dir.file("c.pem"), dir.file("c.key"), "", cert, error));
  CHECK(cert.names == std::vector<std::string>{"cn.test"});
  EVP_PKEY_free(key);
}

TEST_CASE("a key that does not match its certificate is refused") {
  TempDir dir;
  EVP_PKEY* k1 = make_key(true);
  EVP_PKEY* k2 = make_key(true);
  write_cert(dir.file("a.pem"), dir.file("a.key"), k1, "a.test", "DNS:a.test", -1, 30);
  write_cert(dir.file("b.pem"), dir.file("b.key"), k2, "b.test", "DNS:b.test", -1, 30);
  tls::LoadedCertificate cert;
  std::string error;
  CHECK_FALSE(tls::load_certificate(dir.file("a.pem"), dir.file("b.key"), "", cert, error));
  CHECK(error.find("does not match certificate") != std::string::npos);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
}

TEST_CASE("expired, not yet valid and unreadable certificates are refused") {
  TempDir dir;
  EVP_PKEY* key = make_key(true);
  std::string error;
  tls::LoadedCertificate cert;
  write_cert(dir.file("old.pem"), dir.file("old.key"), key, "old.test", "DNS:old.test", -10, -1);
  CHECK_FALSE(tls::load_certificate(dir.file("old.pem"), dir.file("old.key"), "", cert, error));
  CHECK(error.find("expired on") != std::string::npos);

  tls::LoadedCertificate later;
  write_cert(dir.file("new.pem"), dir.file("new.key"), key, "new.test", "DNS:new.test", 2, 10);
  CHECK_FALSE(tls::load_certificate(dir.file("new.pem"), dir.file("new.key"), "", later, error));
  CHECK(error.find("not valid before") != std::string::npos);

  tls::LoadedCertificate missing;
  CHECK_FALSE(tls::load_certificate(dir.file("nope.pem"), dir.file("old.key"), "", missing, error));
  CHECK(error.find("cannot read certificate") != std::string::npos);
  EVP_PKEY_free(key);
}

TEST_CASE("wildcards match exactly one label (RFC 6125 6.4.3)") {
  CHECK(tls::name_matches("*.a.test", "x.a.test"));
  CHECK_FALSE(tls::name_matches("*.a.test", "a.test"));
  CHECK_FALSE(tls::name_matches("*.a.test", "y.x.a.test"));
  CHECK(tls::name_matches("a.test", "a.test"));
  CHECK_FALSE(tls::name_matches("a.test", "b.test"));
}

TEST_CASE("RSA and ECDSA certificates for the same names share one context") {
  TempDir dir;
  EVP_PKEY* rsa = make_key(false);
  EVP_PKEY* ec = make_key(true);
  EVP_PKEY* other = make_key(true);
  write_cert(dir.file("rsa.pem"), dir.file("rsa.key"), rsa, "s.test", "DNS:s.test", -1, 30);
  write_cert(dir.file("ec.pem"), dir.file("ec.key"), ec, "s.test", "DNS:s.test", -1, 30);
  write_cert(dir.file("o.pem"), dir.file("o.key"), other, "o.test", "DNS:o.test", -1, 30);
  conf::ListenerTls config;
  config.certificates = {{dir.file("rsa.pem"), dir.file("rsa.key"), "", {}},
                         {dir.file("ec.pem"), dir.file("ec.key"), "", {}},
                         {dir.file("o.pem"), dir.file("o.key"), "", {}}};
  std::string error;
  auto ctx = tls::ServerContext::create(config, "test.toml", error);
  REQUIRE_MESSAGE(ctx != nullptr, error);
  const auto names = ctx->served_names();
  REQUIRE(names.size() == 2);
  CHECK(names[0] == std::vector<std::string>{"s.test"});
  CHECK(names[1] == std::vector<std::string>{"o.test"});
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(ec);
  EVP_PKEY_free(other);
}

TEST_CASE("a bad certificate entry is reported at its config position") {
  conf::ListenerTls config;
  conf::CertificateFiles files;
  files.cert = "/nonexistent/cert.pem";
  files.key = "/nonexistent/key.pem";
  files.where = {"gw.toml", 7, 17};
  config.certificates.push_back(files);
  std::string error;
  CHECK(tls::ServerContext::create(config, "gw.toml", error) == nullptr);
  CHECK(error.starts_with("gw.toml:7:17: listener.tls.certificates: cannot read certificate"));
}
