#include "proxy/upstream/dns_lookup.h"

#include <utility>

namespace wsgate::proxy {

void DnsLookup::start(evdns_base* dns, const char* host, const evutil_addrinfo& hints, Done done) {
  cancel();
  done_ = std::move(done);
  auto* token = new Token{this, nullptr};
  token_ = token;
  evdns_getaddrinfo_request* request =
      evdns_getaddrinfo(dns, host, nullptr, &hints, &DnsLookup::on_answer, token);
  // Unless the answer came already (then on_answer freed the token).
  if (token_ == token) token->request = request;
}

void DnsLookup::cancel() {
  Token* token = std::exchange(token_, nullptr);
  if (token == nullptr) return;
  token->owner = nullptr;
  // The callback still runs (EVUTIL_EAI_CANCEL) and frees the token.
  if (token->request != nullptr) evdns_getaddrinfo_cancel(token->request);
}

void DnsLookup::on_answer(int result, evutil_addrinfo* answer, void* arg) {
  auto* token = static_cast<Token*>(arg);
  DnsLookup* owner = token->owner;
  delete token;
  if (owner != nullptr) owner->token_ = nullptr;
  if (owner != nullptr && result != EVUTIL_EAI_CANCEL) {
    Done done = std::move(owner->done_);  // `done` may destroy the owner
    done(result, answer);
  }
  if (answer != nullptr) evutil_freeaddrinfo(answer);
}

}  // namespace wsgate::proxy
