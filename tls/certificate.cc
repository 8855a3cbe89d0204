#include "tls/certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cstdio>
#include <ctime>

namespace wsgate::tls {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string asn1_time_text(const ASN1_TIME* t) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::vector<std::string> dns_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type != GEN_DNS) continue;
      const auto* data = ASN1_STRING_get0_data(name->d.dNSName);
      names.push_back(
          lowercase(std::string(reinterpret_cast<const char*>(data),
                                static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    // RFC 6125 6.4.4: the CN only counts when there is no DNS SAN.
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) > 0)
      names.push_back(lowercase(cn));
  }
  return names;
}

}  // namespace

std::string last_openssl_error() {
  const unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  if (err == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(err);
  return reason != nullptr ? reason : "error " + std::to_string(err);
}

bool name_matches(const std::string& pattern, const std::string& host) {
  if (pattern.rfind("*.", 0) == 0) {
    const std::string suffix = pattern.substr(1);
    if (host.size() <= suffix.size() ||
        host.compare(host.size() - suffix.size(), suffix.size(), suffix) != 0)
      return false;
    return host.find('.') == host.size() - suffix.size();  // one label only
  }
  return pattern == host;
}

bool load_certificate(const std::string& cert_file, const std::string& key_file,
                      const std::string& ocsp_file, LoadedCertificate& out, std::string& error) {
  ERR_clear_error();
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(cert_file.c_str(), "r"));
  if (!bio) {
    error = "cannot read certificate " + cert_file + ": " + last_openssl_error();
    return false;
  }
  out.leaf.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!out.leaf) {
    error = "certificate " + cert_file + " holds no PEM certificate: " + last_openssl_error();
    return false;
  }
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    out.chain.emplace_back(extra);
  ERR_clear_error();  // the end of the file reads as an error

  std::unique_ptr<BIO, BioDeleter> key_bio(BIO_new_file(key_file.c_str(), "r"));
  if (!key_bio) {
    error = "cannot read key " + key_file + ": " + last_openssl_error();
    return false;
  }
  out.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!out.key) {
    error = "key " + key_file + " holds no PEM private key: " + last_openssl_error();
    return false;
  }
  if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
    ERR_clear_error();
    error = "key " + key_file + " does not match certificate " + cert_file;
    return false;
  }
  const ASN1_TIME* not_after = X509_get0_notAfter(out.leaf.get());
  if (X509_cmp_current_time(not_after) <= 0) {
    error = "certificate " + cert_file + " expired on " + asn1_time_text(not_after);
    return false;
  }
  const ASN1_TIME* not_before = X509_get0_notBefore(out.leaf.get());
  if (X509_cmp_current_time(not_before) > 0) {
    error = "certificate " + cert_file + " is not valid before " + asn1_time_text(not_before);
    return false;
  }
  if (std::tm tm{}; ASN1_TIME_to_tm(not_after, &tm) == 1) out.not_after_unix = timegm(&tm);
  out.names = dns_names(out.leaf.get());
  out.key_type = EVP_PKEY_get_base_id(out.key.get());
  if (!ocsp_file.empty()) {
    std::FILE* in = std::fopen(ocsp_file.c_str(), "rb");
    if (in == nullptr) {
      error = "cannot read OCSP response " + ocsp_file;
      return false;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0 && out.ocsp_der.size() < (1u << 20))
      out.ocsp_der.append(buf, n);
    std::fclose(in);
    if (out.ocsp_der.empty()) {
      error = "OCSP response " + ocsp_file + " is empty";
      return false;
    }
  }
  return true;
}

}  // namespace wsgate::tls
