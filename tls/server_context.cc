#include "tls/server_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tls/ticket_keys.h"

namespace wsgate::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 list: forward secrecy and AEAD only.
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Mozilla's "intermediate" TLS 1.3 order: AES-128-GCM first, as in the TLS 1.2 list
// (OpenSSL's own default puts AES-256-GCM-SHA384 first, whose SHA-384 key schedule and
// record cipher cost more per handshake and per byte).
constexpr const char* kDefaultCiphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// ALPN (RFC 7301): what the front end speaks, in our order of preference; h2 (RFC 9113
// 3.2) only on listeners with http2 = true.
struct AlpnList {
  const unsigned char* wire;
  unsigned int length;
};
constexpr unsigned char kAlpnH1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kAlpnH2H1[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr AlpnList kAlpnLists[] = {{kAlpnH1, sizeof(kAlpnH1)}, {kAlpnH2H1, sizeof(kAlpnH2H1)}};

std::string at(const std::string& file, const conf::SourcePosition& where) {
  return file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": ";
}

}  // namespace

ServerContext::~ServerContext() = default;

ResumptionScope resumption_scope(const conf::ListenerTls& config, const std::string& listener,
                                 std::string& error) {
  ResumptionScope scope{};
  std::string input = "wsgate resumption scope 1";
  input += '\0';
  input += listener;
  input += '\0';
  input += std::to_string(static_cast<int>(config.client_auth));
  input += '\0';
  if (config.client_auth != conf::ClientAuth::None) {
    std::ifstream in(config.client_ca, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    if (!in) {
      error = "cannot read " + config.client_ca;
      return scope;
    }
    input += contents.str();
  }
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), scope.data(), &length, EVP_sha256(), nullptr);
  static_assert(sizeof(ResumptionScope) <= SSL_MAX_SID_CTX_LENGTH);
  return scope;
}

std::shared_ptr<const ServerContext> ServerContext::create(const conf::ListenerTls& config,
                                                           const std::string& config_file,
                                                           std::string& error, bool offer_h2,
                                                           const std::string& listener) {
  std::shared_ptr<ServerContext> self(new ServerContext());
  std::string why_scope;
  const ResumptionScope scope = resumption_scope(config, listener, why_scope);
  if (!why_scope.empty()) {
    error = at(config_file, config.where) + "listener.tls.client_ca: " + why_scope;
    return nullptr;
  }
  self->tickets_ = ticket_key_ring(scope);
  for (const auto& files : config.certificates) {
    LoadedCertificate cert;
    std::string why;
    if (!load_certificate(files.cert, files.key, files.ocsp, cert, why)) {
      error = at(config_file, files.where) + "listener.tls.certificates: " + why;
      return nullptr;
    }
    self->expiries_.emplace_back(files.cert, cert.not_after_unix);
    std::vector<std::string> names = cert.names;
    std::sort(names.begin(), names.end());
    Group* group = nullptr;
    for (auto& g : self->groups_) {
      const bool same_key_type =
          std::any_of(g->certificates.begin(), g->certificates.end(),
                      [&](const LoadedCertificate& c) { return c.key_type == cert.key_type; });
      if (g->names == names && !same_key_type) group = g.get();
    }
    if (group == nullptr) {
      self->groups_.push_back(std::make_unique<Group>());
      group = self->groups_.back().get();
      group->names = names;
      group->ctx.reset(SSL_CTX_new(TLS_server_method()));
      SSL_CTX* ctx = group->ctx.get();
      SSL_CTX_set_min_proto_version(
          ctx, config.min_version == conf::TlsVersion::Tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
      SSL_CTX_set_options(
          ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
      // Idle connections give their 16 KiB+ record buffers back (most WebSockets idle).
      SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
      const std::string ciphers = config.ciphers.empty() ? kDefaultCiphers : config.ciphers;
      if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
        error = at(config_file, config.where) + "listener.tls.ciphers: no usable cipher in \"" +
                ciphers + "\"";
        return nullptr;
      }
      const std::string suites =
          config.ciphersuites.empty() ? kDefaultCiphersuites : config.ciphersuites;
      if (SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
        error = at(config_file, config.where) + "listener.tls.ciphersuites: no usable suite in \"" +
                suites + "\"";
        return nullptr;
      }
      // Resumption: a server-side cache for session IDs, and rotating ticket keys, both
      // bound to this listener's scope: OpenSSL resumes a session (from the cache or a
      // ticket) only when its session id context is this one.
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
      SSL_CTX_sess_set_cache_size(ctx, 20000);
      SSL_CTX_set_session_id_context(ctx, scope.data(), static_cast<unsigned>(scope.size()));
      enable_rotating_tickets(ctx, self->tickets_.get());
      // One TLS 1.3 ticket per full handshake, not OpenSSL's two: enough for the next
      // connection to resume (and a resumed one gets a fresh ticket); each ticket costs a
      // key derivation, an encryption and a record (issue 13: CPU per handshake).
      SSL_CTX_set_num_tickets(ctx, 1);
      if (config.client_auth != conf::ClientAuth::None) {
        if (SSL_CTX_load_verify_locations(ctx, config.client_ca.c_str(), nullptr) != 1) {
          error = at(config_file, config.where) + "listener.tls.client_ca: cannot load " +
                  config.client_ca + ": " + last_openssl_error();
          return nullptr;
        }
        SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(config.client_ca.c_str()));
        int mode = SSL_VERIFY_PEER;
        if (config.client_auth == conf::ClientAuth::Required)
          mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, nullptr);
      }
      // The OpenSSL macros for these two callbacks use C casts (-Wold-style-cast under g++).
      SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                            reinterpret_cast<void (*)()>(&ServerContext::on_servername));
      SSL_CTX_set_tlsext_servername_arg(ctx, self.get());
      SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::on_alpn,
                                 const_cast<AlpnList*>(&kAlpnLists[offer_h2 ? 1 : 0]));
      SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                            reinterpret_cast<void (*)()>(&ServerContext::on_ocsp_status));
      SSL_CTX_set_tlsext_status_arg(ctx, group);
    }
    SSL_CTX* ctx = group->ctx.get();
    if (SSL_CTX_use_certificate(ctx, cert.leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, cert.key.get()) != 1) {
      error = at(config_file, files.where) + "listener.tls.certificates: " + files.cert + ": " +
              last_openssl_error();
      return nullptr;
    }
    // The chain belongs to the certificate just set (one chain per key type).
    for (const auto& extra : cert.chain) SSL_CTX_add1_chain_cert(ctx, extra.get());
    if (!cert.ocsp_der.empty()) group->ocsp.emplace_back(cert.leaf.get(), cert.ocsp_der);
    group->certificates.push_back(std::move(cert));
  }
  return self;
}

SSL* ServerContext::new_ssl() const {
  return SSL_new(groups_.front()->ctx.get());
}

std::vector<std::vector<std::string>> ServerContext::served_names() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& g : groups_) out.push_back(g->names);
  return out;
}

const ServerContext::Group* ServerContext::select(const std::string& server_name) const {
  // Exact names first, then wildcards, then the default (the first certificate).
  for (const auto& g : groups_)
    if (std::find(g->names.begin(), g->names.end(), server_name) != g->names.end()) return g.get();
  for (const auto& g : groups_)
    for (const auto& n : g->names)
      if (n.rfind("*.", 0) == 0 && name_matches(n, server_name)) return g.get();
  return groups_.front().get();
}

int ServerContext::on_servername(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;  // no SNI: the default certificate
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const Group* g = self->select(lower);
  if (g->ctx.get() != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, g->ctx.get());
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                           const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* ours = static_cast<const AlpnList*>(arg);
  unsigned char* selected = nullptr;
  // Our first protocol that the client offers (h2 before http/1.1).
  if (SSL_select_next_proto(&selected, outlen, ours->wire, ours->length, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    // RFC 7301 3.2: no protocol in common is a fatal no_application_protocol alert.
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_ocsp_status(SSL* ssl, void* arg) {
  const auto* group = static_cast<const Group*>(arg);
  // After an SNI switch this is the callback of the chosen context; its own group.
  const X509* leaf = SSL_get_certificate(ssl);
  for (const auto& [cert, der] : group->ocsp) {
    if (cert != leaf) continue;
    auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(der.size()));
    std::memcpy(copy, der.data(), der.size());
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(der.size()));
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string describe_session(const SSL* ssl) {
  return SSL_get_version(ssl);
}

}  // namespace wsgate::tls
