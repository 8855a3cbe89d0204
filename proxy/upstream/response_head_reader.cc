#include "proxy/upstream/response_head_reader.h"

#include <algorithm>
#include <string>
#include <string_view>

namespace wsgate::proxy {

http1::ParseResult read_final_response_head(evbuffer* in, const http1::Limits& limits,
                                            http1::ResponseHead& head, int& interim) {
  for (;;) {
    const std::size_t len = std::min(evbuffer_get_length(in), limits.max_head_bytes + 4);
    const auto* p =
        reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(len)));
    head = http1::ResponseHead();
    http1::ParseResult parsed = http1::parse_response_head(std::string_view(p, len), limits, head);
    if (parsed.state != http1::ParseState::Complete) return parsed;
    if (head.status < 100 || head.status >= 200 || head.status == 101) return parsed;
    // RFC 9110 15.2: interim, without content; the final response follows. Bounded, so
    // an upstream cannot keep the exchange waiting on 1xx alone (the handshake timeout
    // bounds the time, this the count).
    evbuffer_drain(in, parsed.head_length);
    if (++interim > kMaxInterimResponses) {
      http1::ParseResult flood;
      flood.state = http1::ParseState::Error;
      flood.error_status = 502;
      flood.error_reason = "more than " + std::to_string(kMaxInterimResponses) +
                           " interim (1xx) responses before the answer";
      return flood;
    }
  }
}

}  // namespace wsgate::proxy
