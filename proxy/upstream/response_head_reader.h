// Reads an upstream's answer to the upgrade request from its input buffer, skipping the
// interim responses before it. Shared by the upstream connector and the health probe, so
// both accept the same answers. No I/O beyond the buffer it is given.
#pragma once

#include <event2/buffer.h>

#include "proxy/codec/http1_parser.h"

namespace wsgate::proxy {

// How many interim responses an upstream may send before its answer; one more -> Error.
inline constexpr int kMaxInterimResponses = 8;

// RFC 9110 15.2: a 1xx other than 101 is interim (100 Continue, 103 Early Hints, ...);
// the client must parse and ignore it and wait for the final response. Each complete
// interim head at the start of `in` is drained and counted in `interim` (kept by the
// caller across calls, zero at the start of an attempt). Returns:
//  - Incomplete: wait for more bytes;
//  - Complete: `head` is the first response that is not interim (a 101 or a final
//    status); its head_length bytes are still in `in`, for the caller to drain;
//  - Error: a malformed head, or more than kMaxInterimResponses interim ones
//    (error_reason says which).
http1::ParseResult read_final_response_head(evbuffer* in, const http1::Limits& limits,
                                            http1::ResponseHead& head, int& interim);

}  // namespace wsgate::proxy
