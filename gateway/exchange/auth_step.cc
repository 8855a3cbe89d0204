#include "gateway/exchange/auth_step.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "gateway/exchange/error_response.h"
#include "gateway/worker.h"
#include "proxy/auth/forward_auth.h"
#include "proxy/auth/jwt.h"
#include "proxy/auth/token_source.h"

namespace wsgate::gateway {
namespace {

// RFC 6750 3: the challenge of a bearer-token resource; error="invalid_token" when a token
// was presented and failed. The description is our one-line reason, which never holds
// the token.
http::Refusal unauthorized(std::string reason, bool token_presented) {
  std::string challenge = R"(Bearer realm="wsgate")";
  if (token_presented) challenge += R"(, error="invalid_token")";
  return {401, std::move(reason), {{"WWW-Authenticate", std::move(challenge)}}};
}

// The label of wsgate_auth_decisions_total for a JWT that failed with `error`, and the
// status it gets: 401 for a token that does not prove who the client is, 403 for a valid
// one that does not grant this route (RFC 6750 3.1 invalid_token / insufficient_scope).
struct JwtFailure {
  const char* result;
  bool forbidden;
};
JwtFailure classify(proxy::JwtError error) {
  switch (error) {
    case proxy::JwtError::Expired:
      return {"expired", false};
    case proxy::JwtError::WrongIssuer:
    case proxy::JwtError::WrongAudience:
    case proxy::JwtError::MissingClaim:
    case proxy::JwtError::UnusableClaim:
      return {"forbidden", true};
    default:
      return {"invalid", false};
  }
}

}  // namespace

AuthStep::AuthStep(Worker& worker, const conf::Config& config, const tls::TlsSnapshot* tls,
                   const conf::Route& route)
    : worker_(worker), config_(config), tls_(tls), route_(route) {}

AuthStep::~AuthStep() {
  cancel();
}

void AuthStep::cancel() {
  done_ = nullptr;
  forward_.reset();
}

void AuthStep::run(http::RequestHead& request, std::string_view client_ip, Done done) {
  done_ = std::move(done);
  switch (route_.auth.type) {
    case conf::RouteAuth::Type::Jwt:
      run_jwt(request);
      return;
    case conf::RouteAuth::Type::Forward:
      run_forward(request, client_ip);
      return;
    case conf::RouteAuth::Type::None:
      break;
  }
  AuthOutcome outcome;
  outcome.allowed = true;
  decided(std::move(outcome), {});
}

void AuthStep::run_jwt(http::RequestHead& request) {
  const conf::JwtAuth& jwt = route_.auth.jwt;
  for (const auto& claim_header : jwt.claim_headers)
    remove_client_copies(request, claim_header.second);

  AuthOutcome outcome;
  const std::optional<proxy::FoundToken> token = proxy::find_token(request, jwt.token_from);
  if (!token) {
    outcome.refusal = unauthorized("no token: route " + route_.name + " needs a JWT", false);
    decided(std::move(outcome), "missing");
    return;
  }
  const tls::JwtKeySource* source = tls_ != nullptr ? tls_->jwt_keys(route_.name) : nullptr;
  const std::shared_ptr<const tls::JwtKeySet> keys = source ? source->keys() : nullptr;
  if (keys == nullptr) {  // cannot happen: the snapshot loads every route's keys
    outcome.refusal = http::Refusal{503, "no keys loaded for route " + route_.name, {}};
    decided(std::move(outcome), "failed");
    return;
  }
  const auto now = std::chrono::system_clock::now();
  proxy::JwtRules rules{jwt.algorithms, jwt.issuer, jwt.audiences,
                        std::chrono::duration_cast<std::chrono::seconds>(jwt.clock_skew),
                        jwt.required_claims};
  proxy::JwtResult verified = proxy::verify_jwt(token->token, *keys, rules, now);
  if (!verified.ok() && verified.error == proxy::JwtError::UnknownKey &&
      source->waiting_for_url()) {
    // The key may be among those the jwks_url has not given yet: not the client's fault.
    outcome.refusal = http::Refusal{
        503, "signing keys from the route's jwks_url not fetched yet", {{"Retry-After", "5"}}};
    decided(std::move(outcome), "failed");
    return;
  }
  if (!verified.ok()) {
    const JwtFailure failure = classify(verified.error);
    std::string reason = "token rejected: " + verified.reason;
    if (failure.forbidden) {
      outcome.refusal = http::Refusal{403, std::move(reason), {}};
    } else {
      outcome.refusal = unauthorized(std::move(reason), true);
    }
    decided(std::move(outcome), failure.result);
    return;
  }
  // Claims become header fields; a value that cannot be one (a line break) refuses the
  // request rather than pass a header the upstream would split.
  for (const auto& [claim, header] : jwt.claim_headers) {
    std::optional<std::string> value = proxy::claim_as_field_value(verified.claims, claim);
    if (!value) continue;  // absent: required_claims is the way to insist
    if (value->find_first_of("\r\n") != std::string::npos ||
        value->find('\0') != std::string::npos) {
      outcome.refusal =
          http::Refusal{403, "token rejected: claim " + claim + " cannot be a header value", {}};
      decided(std::move(outcome), "forbidden");
      return;
    }
    request.fields.push_back({header, std::move(*value)});
  }
  if (jwt.strip_token) proxy::strip_token(request, *token);
  outcome.allowed = true;
  outcome.expires = verified.expires;
  if (const auto sub = verified.claims.find("sub");
      sub != verified.claims.end() && sub->is_string())
    outcome.user = sub->get<std::string>();
  decided(std::move(outcome), "allowed");
}

http1::ResponseHead auth_service_response_head(const AuthOutcome::ServiceAnswer& answer) {
  std::string raw =
      "HTTP/1.1 " + std::to_string(answer.status) + " " + status_text(answer.status) + "\r\n";
  for (const auto& [name, value] : answer.fields) raw += name + ": " + value + "\r\n";
  // RFC 9110 8.6: no Content-Length in a 204 (nor in a 304, which has no content).
  if (answer.status != 204 && answer.status != 304)
    raw += "Content-Length: " + std::to_string(answer.body.size()) + "\r\n";
  raw += "Connection: close\r\n\r\n";
  http1::ResponseHead head;
  // The fields came from a parsed response, so this parses; a head that somehow does not
  // becomes a bare 502.
  if (http1::parse_response_head(raw, http1::Limits{64 * 1024, 200}, head).state !=
      http1::ParseState::Complete) {
    head = http1::ResponseHead();
    const std::string bare = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    http1::parse_response_head(bare, http1::Limits{}, head);
  }
  return head;
}

void AuthStep::remove_client_copies(http::RequestHead& request, std::string_view name) {
  std::erase_if(request.fields, [&](const http::Field& f) { return http::iequals(f.name, name); });
}

void AuthStep::decided(AuthOutcome&& outcome, std::string_view result) {
  if (!result.empty()) worker_.metrics().auth_decided(route_.name, result);
  // `done` may destroy this step (the exchange refuses and finishes): call it last.
  if (Done done = std::exchange(done_, nullptr)) done(std::move(outcome));
}

}  // namespace wsgate::gateway
