#include "tls/client_context.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

namespace wsgate::tls {
namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string at(const std::string& file, const conf::SourcePosition& where) {
  return file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": ";
}

}  // namespace

std::shared_ptr<const ClientContext> ClientContext::create(const conf::UpstreamTls& config,
                                                           const std::string& config_file,
                                                           std::string& error) {
  auto self = std::make_shared<ClientContext>();
  self->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = self->ctx_.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  self->server_name_ = config.server_name;
  self->verify_ = config.verify;
  if (!config.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, config.ca.c_str(), nullptr) != 1) {
      error = at(config_file, config.where) + "upstream.tls.ca: cannot load " + config.ca + ": " +
              last_openssl_error();
      return nullptr;
    }
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  SSL_CTX_set_verify(ctx, config.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (!config.cert.empty()) {
    LoadedCertificate cert;
    std::string why;
    if (!load_certificate(config.cert, config.key, "", cert, why)) {
      error = at(config_file, config.where) + "upstream.tls: " + why;
      return nullptr;
    }
    SSL_CTX_use_certificate(ctx, cert.leaf.get());
    SSL_CTX_use_PrivateKey(ctx, cert.key.get());
    for (const auto& extra : cert.chain) SSL_CTX_add1_chain_cert(ctx, extra.get());
  }
  SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof(kAlpnHttp11));
  return self;
}

SSL* ClientContext::new_ssl(const std::string& host) const {
  SSL* ssl = SSL_new(ctx_.get());
  const std::string& name = server_name_.empty() ? host : server_name_;
  const bool ip = is_ip_literal(name);
  // SSL_set_tlsext_host_name() is a macro with a C cast (-Wold-style-cast under g++).
  if (!ip)
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
  if (verify_) {
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set1_host(ssl, name.c_str());
    }
  }
  return ssl;
}

}  // namespace wsgate::tls
