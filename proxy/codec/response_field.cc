#include "proxy/codec/response_field.h"

#include <string>

namespace wsgate::proxy {

bool append_response_field(http1::ResponseHead& head, std::string_view name,
                           std::string_view value) {
  if (head.raw.size() < 4 || !head.raw.ends_with("\r\n\r\n")) return false;
  std::string raw(head.raw, 0, head.raw.size() - 2);  // keeps the last field's CRLF
  raw.append(name).append(": ").append(value).append("\r\n\r\n");
  // Parsed again so that the views point into the new bytes. The limits only need to
  // admit a head the connector already accepted plus this one field.
  http1::Limits limits;
  limits.max_head_bytes = raw.size() + 1;
  limits.max_headers = head.headers.size() + 1;
  http1::ResponseHead out;
  const http1::ParseResult r = http1::parse_response_head(raw, limits, out);
  if (r.state != http1::ParseState::Complete || r.head_length != raw.size() ||
      out.headers.size() != head.headers.size() + 1)
    return false;
  head = std::move(out);
  return true;
}

}  // namespace wsgate::proxy
