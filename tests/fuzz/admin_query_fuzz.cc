// The admin server's query strings and close paths (metrics/admin/connection_table.h,
// metrics/admin/admin_close.h): what any client of the admin port can send.
//
// Properties:
//  - percent_decode undoes a full percent-encoding, and leaves text without '%'/'+' as is;
//  - a filter or close query that parses, printed back in canonical form, parses to the
//    same values; a close request always carries an allowed code and a reason of at most
//    123 bytes of valid UTF-8 (it goes into a Close frame, RFC 6455 5.5);
//  - is_valid_utf8 agrees with an independent decoder;
//  - append_json_string leaves no raw control byte and ends the string where it should.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/admin/admin_close.h"
#include "metrics/admin/connection_table.h"
#include "tests/fuzz/fuzz_check.h"

namespace metrics = wsgate::metrics;
using wsgate::fuzz::valid_utf8;

namespace {

std::string encode_all(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

void check_decode(std::string_view s) {
  FUZZ_CHECK(metrics::percent_decode(encode_all(s)) == s);
  FUZZ_CHECK(metrics::percent_decode(encode_all(s), false) == s);
  if (s.find_first_of("%+") == std::string_view::npos) FUZZ_CHECK(metrics::percent_decode(s) == s);
  FUZZ_CHECK(metrics::percent_decode(s).size() <= s.size());
}

void check_filter(std::string_view query) {
  metrics::ConnectionFilter f;
  const std::string error = metrics::parse_connection_filter(query, f);
  // Errors go back in a text/plain body (they may quote the decoded value).
  if (!error.empty()) return;
  const std::string printed = "route=" + encode_all(f.route) + "&server=" + encode_all(f.server) +
                              "&limit=" + std::to_string(f.limit);
  metrics::ConnectionFilter g;
  FUZZ_CHECK(metrics::parse_connection_filter(printed, g).empty());
  FUZZ_CHECK(g.route == f.route && g.server == f.server && g.limit == f.limit);
}

void check_close_query(std::string_view query) {
  metrics::CloseRequest r;
  const std::string error = metrics::parse_close_query(query, r);
  if (!error.empty()) return;
  FUZZ_CHECK(metrics::is_admin_close_code(r.code));
  FUZZ_CHECK(r.reason.size() <= metrics::kMaxCloseReasonBytes);
  FUZZ_CHECK(valid_utf8(r.reason));
  const std::string printed = "code=" + std::to_string(r.code) + "&reason=" + encode_all(r.reason);
  metrics::CloseRequest again;
  FUZZ_CHECK(metrics::parse_close_query(printed, again).empty());
  FUZZ_CHECK(again.code == r.code && again.reason == r.reason);
}

void check_close_path(std::string_view path) {
  metrics::CloseRequest r;
  const auto result = metrics::parse_close_path(path, r);
  if (!result || !result->empty()) return;
  std::string printed;
  if (r.target == metrics::CloseRequest::Target::Connection) {
    printed = "/connections/" + std::to_string(r.worker) + "-" + std::to_string(r.id) + "/close";
  } else {
    printed =
        "/upstreams/" + encode_all(r.upstream) + "/servers/" + encode_all(r.server) + "/close";
  }
  metrics::CloseRequest again;
  const auto second = metrics::parse_close_path(printed, again);
  FUZZ_CHECK(second && second->empty());
  FUZZ_CHECK(again.target == r.target && again.worker == r.worker && again.id == r.id &&
             again.upstream == r.upstream && again.server == r.server);
}

void check_json(std::string_view s) {
  std::string out;
  metrics::append_json_string(out, s);
  FUZZ_CHECK(out.size() >= 2 && out.front() == '"' && out.back() == '"');
  bool escaped = false;
  for (std::size_t i = 1; i + 1 < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    FUZZ_CHECK(c >= 0x20);  // RFC 8259 7: control characters must be escaped
    if (escaped) {
      escaped = false;
    } else if (c == '\\') {
      escaped = true;
    } else {
      FUZZ_CHECK(c != '"');  // an unescaped quote would end the string early
    }
  }
  FUZZ_CHECK(!escaped);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_decode(input);
  check_filter(input);
  check_close_query(input);
  check_close_path(input);
  check_json(input);
  FUZZ_CHECK(metrics::is_valid_utf8(input) == valid_utf8(input));
  return 0;
}
