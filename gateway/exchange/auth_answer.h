// The auth service's own answer (forward auth's Denied verdict, AuthOutcome::ServiceAnswer)
// as the response head a Downstream writes: HTTP/1.1 text for an HTTP/1.1 client, mapped
// to HEADERS for an HTTP/2 stream (gateway/h2/h2_mapping.h), like an upstream's refusal.
#pragma once

#include "gateway/exchange/auth_step.h"
#include "proxy/codec/http1_parser.h"

namespace wsgate::gateway {

// "HTTP/1.1 <status> <reason>", the answer's fields (those proxy::kClientAnswerFields
// lets through), Content-Length of its body (none for 204 and 304, RFC 9110 8.6), and
// Connection: close (the client's connection ends with the answer, as with every refusal).
http1::ResponseHead auth_service_response_head(const AuthOutcome::ServiceAnswer& answer);

}  // namespace wsgate::gateway
