// AuthStep's forward branch (conf::ForwardAuth): see gateway/exchange/auth_step.h.
#include "gateway/exchange/auth_step.h"
#include "gateway/worker.h"

namespace wsgate::gateway {

void AuthStep::run_forward(http::RequestHead& /*request*/, std::string_view /*client_ip*/) {
  // Placeholder until the forward-auth subrequest lands (issue 17, branch fwdauth).
  AuthOutcome outcome;
  outcome.refusal = http::Refusal{503, "forward auth is not available yet", {}};
  decided(std::move(outcome), "failed");
}

}  // namespace wsgate::gateway
