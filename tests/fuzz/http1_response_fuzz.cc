// HTTP/1.1 response heads (proxy/codec/http1_parser.h), from a backend the gateway does not
// control (the 101 check, the health probe). Same properties as the request target:
// the first decision on a prefix is final, errors are one line, views point into raw
// after copies and moves, and a Complete head serialised again parses the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/codec/http1_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace http1 = wsgate::http1;
using wsgate::fuzz::is_one_line;
using wsgate::fuzz::points_into;

namespace {

void check_views(const http1::ResponseHead& h) {
  FUZZ_CHECK(points_into(h.reason, h.raw));
  for (const http1::Header& f : h.headers) {
    FUZZ_CHECK(points_into(f.name, h.raw));
    FUZZ_CHECK(points_into(f.value, h.raw));
  }
}

bool same_head(const http1::ResponseHead& a, const http1::ResponseHead& b) {
  if (a.status != b.status || a.reason != b.reason || a.version_minor != b.version_minor ||
      a.headers.size() != b.headers.size())
    return false;
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
      return false;
  }
  return true;
}

bool same_result(const http1::ParseResult& a, const http1::ParseResult& b) {
  return a.state == b.state && a.head_length == b.head_length && a.error_status == b.error_status &&
         a.error_reason == b.error_reason;
}

void run(std::string_view input, const http1::Limits& limits, std::size_t split) {
  http1::ResponseHead head;
  const http1::ParseResult r = http1::parse_response_head(input, limits, head);

  http1::ResponseHead early;
  const http1::ParseResult p = http1::parse_response_head(input.substr(0, split), limits, early);
  if (p.state != http1::ParseState::Incomplete) FUZZ_CHECK(same_result(p, r));
  if (p.state == http1::ParseState::Complete) FUZZ_CHECK(same_head(early, head));

  switch (r.state) {
    case http1::ParseState::Incomplete:
      FUZZ_CHECK(input.size() < limits.max_head_bytes);
      return;
    case http1::ParseState::Error:
      FUZZ_CHECK(r.error_status == 400 || r.error_status == 431 || r.error_status == 505);
      FUZZ_CHECK(!r.error_reason.empty() && is_one_line(r.error_reason));
      return;
    case http1::ParseState::Complete:
      break;
  }
  FUZZ_CHECK(r.head_length > 0 && r.head_length <= input.size());
  FUZZ_CHECK(r.head_length <= limits.max_head_bytes);
  FUZZ_CHECK(head.raw == input.substr(0, r.head_length));
  FUZZ_CHECK(head.status >= 100 && head.status <= 599);
  FUZZ_CHECK(head.version_minor == 0 || head.version_minor == 1);
  FUZZ_CHECK(head.headers.size() <= limits.max_headers);
  FUZZ_CHECK(is_one_line(head.reason));
  check_views(head);
  for (const http1::Header& f : head.headers) {
    FUZZ_CHECK(!f.name.empty());
    FUZZ_CHECK(is_one_line(f.value));
    FUZZ_CHECK(head.find(f.name) != nullptr);
  }

  http1::ResponseHead copy(head);
  check_views(copy);
  FUZZ_CHECK(same_head(copy, head));
  http1::ResponseHead moved(std::move(copy));
  check_views(moved);
  FUZZ_CHECK(same_head(moved, head));
  http1::ResponseHead assigned;
  assigned = moved;
  check_views(assigned);
  FUZZ_CHECK(same_head(assigned, head));

  std::string text = head.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  text += std::to_string(head.status);
  text.append(" ").append(head.reason) += "\r\n";
  for (const http1::Header& f : head.headers)
    text.append(f.name).append(": ").append(f.value) += "\r\n";
  text += "\r\n";
  http1::ResponseHead again;
  http1::Limits roomy = limits;
  roomy.max_head_bytes = text.size() + 1;
  const http1::ParseResult r2 = http1::parse_response_head(text, roomy, again);
  FUZZ_CHECK(r2.state == http1::ParseState::Complete);
  FUZZ_CHECK(r2.head_length == text.size());
  FUZZ_CHECK(same_head(again, head));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = size == 0 ? 0 : (size * 7919) % (size + 1);
  run(input, http1::Limits{}, split);
  run(input, http1::Limits{256, 4}, size / 2);
  return 0;
}
