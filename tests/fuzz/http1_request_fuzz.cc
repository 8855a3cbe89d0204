// HTTP/1.1 request heads (proxy/codec/http1_parser.h), the first bytes any client sends.
// Properties:
//  - the verdict does not depend on how the bytes arrived: once a prefix is Complete or
//    an Error, the whole input gives the same result (the session parses what it has
//    received so far and stops at the first decision);
//  - errors carry 400/431/505 and a one-line reason;
//  - a Complete head's views point into its own raw, also after a copy and a move;
//  - a Complete head serialised again parses to the same method, target and fields.
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

void check_views(const http1::RequestHead& h) {
  FUZZ_CHECK(points_into(h.method, h.raw));
  FUZZ_CHECK(points_into(h.target, h.raw));
  for (const http1::Header& f : h.headers) {
    FUZZ_CHECK(points_into(f.name, h.raw));
    FUZZ_CHECK(points_into(f.value, h.raw));
  }
}

bool same_head(const http1::RequestHead& a, const http1::RequestHead& b) {
  if (a.method != b.method || a.target != b.target || a.version_minor != b.version_minor ||
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
  http1::RequestHead head;
  const http1::ParseResult r = http1::parse_request_head(input, limits, head);

  // Bytes arriving in two reads: the first decision is final.
  http1::RequestHead early;
  const http1::ParseResult p = http1::parse_request_head(input.substr(0, split), limits, early);
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
  FUZZ_CHECK(head.headers.size() <= limits.max_headers);
  FUZZ_CHECK(head.version_minor == 0 || head.version_minor == 1);
  check_views(head);
  for (const http1::Header& f : head.headers) {
    FUZZ_CHECK(!f.name.empty());
    FUZZ_CHECK(is_one_line(f.value));
    FUZZ_CHECK(f.value.empty() || (f.value.front() != ' ' && f.value.back() != ' '));
    FUZZ_CHECK(head.find(f.name) != nullptr);
  }

  // Copies and moves re-point the views (short heads live in the small-string buffer).
  http1::RequestHead copy(head);
  check_views(copy);
  FUZZ_CHECK(same_head(copy, head));
  http1::RequestHead moved(std::move(copy));
  check_views(moved);
  FUZZ_CHECK(same_head(moved, head));
  http1::RequestHead assigned;
  assigned = moved;
  check_views(assigned);
  FUZZ_CHECK(same_head(assigned, head));

  // Serialise and parse again: the same head.
  std::string text;
  text.append(head.method).append(" ").append(head.target);
  text.append(head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const http1::Header& f : head.headers)
    text.append(f.name).append(": ").append(f.value) += "\r\n";
  text += "\r\n";
  http1::RequestHead again;
  http1::Limits roomy = limits;
  roomy.max_head_bytes = text.size() + 1;
  const http1::ParseResult r2 = http1::parse_request_head(text, roomy, again);
  FUZZ_CHECK(r2.state == http1::ParseState::Complete);
  FUZZ_CHECK(r2.head_length == text.size());
  FUZZ_CHECK(same_head(again, head));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The split point comes from the input's length so a corpus file replays exactly.
  const std::size_t split = size == 0 ? 0 : (size * 7919) % (size + 1);
  run(input, http1::Limits{}, split);
  run(input, http1::Limits{256, 4}, size / 2);
  return 0;
}
