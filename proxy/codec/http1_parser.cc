// HTTP/1.1 message-head codec (RFC 9112). Two passes over at most max_head_bytes: find
// the end of the head (and reject bare LFs early), then copy the head into out.raw and
// validate it line by line, pointing every view into out.raw. No regex, no allocation
// per header.
#include "proxy/codec/http1_parser.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wsgate::http1 {
namespace {

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//                        "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

using ascii::is_ows;
using ascii::trim_ows;
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
// VCHAR: visible US-ASCII, no SP, no CTL.
bool is_vchar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7e;
}
// RFC 9110 5.5 field-value and RFC 9112 4 reason-phrase: HTAB / SP / VCHAR / obs-text,
// i.e. anything but a CTL other than HTAB (DEL is a CTL too).
constexpr std::array<bool, 256> make_text_table() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = c == '\t' || (c >= 0x20 && c != 0x7f);
  return t;
}
constexpr std::array<bool, 256> kText = make_text_table();

// Whole-string checks as plain table loops (the hot path of every head: no call per byte).
bool all_of_table(std::string_view s, const std::array<bool, 256>& table) {
  for (const char c : s)
    if (!table[static_cast<unsigned char>(c)]) return false;
  return true;
}
// RFC 9110 5.5 field-value: eight bytes at a time while none is a CTL (below 0x20, or
// 0x7f); a word with one is looked at byte by byte (HTAB is allowed).
bool all_text(std::string_view s) {
  if (s.size() < 8) return all_of_table(s, kText);
  const auto word_is_text = [&s](std::size_t i) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, 8);
    // A byte below 0x20 (high bit clear) makes (b - 0x20) borrow into its high bit; a
    // byte of 0x7f becomes 0 after the XOR and borrows the same way.
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
    const uint64_t x = w ^ (kOnes * 0x7f);
    const uint64_t del = (x - kOnes) & ~x & kHigh;
    return (below_space | del) == 0 || all_of_table(s.substr(i, 8), kText);
  };
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8)
    if (!word_is_text(i)) return false;
  // The last bytes as one word that overlaps the words already checked.
  return i == s.size() || word_is_text(s.size() - 8);
}

bool is_token(std::string_view s) {
  return !s.empty() && all_of_table(s, kTchar);
}

ParseResult error(int status, std::string_view reason) {
  ParseResult r;
  r.state = ParseState::Error;
  r.error_status = status;
  r.error_reason = reason;
  return r;
}

// Fields a head usually has (browsers send 10 to 20); more grow the list.
constexpr std::size_t kTypicalFields = 24;

enum class ScanState { Incomplete, Complete, BareLf, TooLarge };

struct Scan {
  // The scan meets every line's LF: it keeps where the first kKept are, so the parse
  // walks the lines without searching for them a second time (a head's lines beyond
  // these are searched again).
  static constexpr std::size_t kKept = 32;

  ScanState state = ScanState::Incomplete;
  std::size_t start = 0;           // first byte of the start line (after ignored empty lines)
  std::size_t length = 0;          // with Complete: bytes up to and including the final CRLFCRLF
  std::size_t lines = 0;           // LFs met from `start` on
  std::array<uint32_t, kKept> lf;  // where the first `lines` of them are (heads < 4 GiB)
  // With Complete: the head has no control byte but its CRLFs and HTABs, so no field
  // value or reason phrase holds one (RFC 9110 5.5) and the parse need not look again.
  // False sends the parse through its byte checks, which say what is wrong and where.
  bool clean = false;
};

// The parse's walk over the lines of a scanned head, in order.
class Lines {
 public:
  explicit Lines(const Scan& scan) : scan_(scan) {}
  // The next line of `head` starting at `pos`, without its CRLF; advances `pos` past
  // the LF. The scan guaranteed every LF in the head follows a CR and that the head
  // ends in CRLF.
  std::string_view next(std::string_view head, std::size_t& pos) {
    const std::size_t lf =
        next_ < std::min(scan_.lines, Scan::kKept) ? scan_.lf[next_++] : head.find('\n', pos);
    const std::string_view line = head.substr(pos, lf - 1 - pos);
    pos = lf + 1;
    return line;
  }

 private:
  const Scan& scan_;
  std::size_t next_ = 0;
};

// Sixteen bytes of a head as bit masks (bit k: byte k): its LFs, and its control bytes
// (below 0x20, or DEL) other than LF.
struct BlockMasks {
  uint32_t lf = 0;
  uint32_t ctl = 0;
};
constexpr std::size_t kBlock = 16;

BlockMasks block_masks(const char* p) {
#if defined(__SSE2__)
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Unsigned x <= 0x1f is min(x, 0x1f) == x.
  const __m128i ctl = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x),
                                   _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
  const auto lf = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('\n'))));
  return {lf, static_cast<uint32_t>(_mm_movemask_epi8(ctl)) & ~lf};
#else
  BlockMasks m;
  for (std::size_t k = 0; k < kBlock; ++k) {
    const auto c = static_cast<unsigned char>(p[k]);
    if (c == '\n') {
      m.lf |= 1U << k;
    } else if (c < 0x20 || c == 0x7f) {
      m.ctl |= 1U << k;
    }
  }
  return m;
#endif
}

// Finds the CRLFCRLF that ends the head within the first max_bytes of input, sixteen
// bytes at a time. Every LF met on the way must follow a CR (RFC 9112 2.2: we do not
// accept a bare LF as a line terminator), which also rejects "\n\n"-terminated heads
// before they can pile up. The same pass tells whether the head is clean (Scan::clean):
// its only control bytes are the CRs right before its LFs.
Scan find_head_end(std::string_view input, std::size_t max_bytes, bool skip_empty_lines) {
  Scan scan;
  const std::size_t n = std::min(input.size(), max_bytes);
  // RFC 9112 2.2: a server SHOULD ignore empty lines (CRLF) received before the
  // request-line. They still count towards the size limit and head_length.
  if (skip_empty_lines) {
    while (scan.start + 1 < n && input[scan.start] == '\r' && input[scan.start + 1] == '\n') {
      scan.start += 2;
    }
  }
  uint32_t stray_ctl = 0;  // a control byte that is no line's CR (or HTAB: not clean either)
  uint32_t last_ctl = 0;   // the block before ended in a control byte: an LF must follow
  char tail[kBlock];
  for (std::size_t pos = scan.start; pos < n; pos += kBlock) {
    const char* block = input.data() + pos;
    const std::size_t valid = std::min(kBlock, n - pos);
    if (valid < kBlock) {
      // The last bytes are copied out and padded: no read past the input.
      std::memset(tail, 0, kBlock);
      block = static_cast<const char*>(std::memcpy(tail, block, valid));
    }
    const BlockMasks m = block_masks(block);
    uint32_t in_head = valid == kBlock ? 0xffffU : (1U << valid) - 1;
    for (uint32_t lfs = m.lf & in_head; lfs != 0; lfs &= lfs - 1) {
      const auto at = static_cast<std::size_t>(std::countr_zero(lfs));
      const std::size_t i = pos + at;
      if (i == 0 || input[i - 1] != '\r') {
        scan.state = ScanState::BareLf;
        return scan;
      }
      if (scan.lines < Scan::kKept) scan.lf[scan.lines] = static_cast<uint32_t>(i);
      ++scan.lines;
      if (i >= scan.start + 3 && input[i - 2] == '\n' && input[i - 3] == '\r') {
        scan.state = ScanState::Complete;
        scan.length = i + 1;
        in_head = (2U << at) - 1;  // what follows the head is not looked at
        break;
      }
    }
    // The byte before each LF was checked to be a CR above; any other control byte is
    // stray (a lone CR, NUL, HTAB, ...).
    const uint32_t lf = m.lf & in_head;
    const uint32_t ctl = m.ctl & in_head;
    stray_ctl |= (ctl & ~(lf >> 1) & 0x7fffU) | (last_ctl & ~lf & 1U);
    last_ctl = ctl >> 15;
    if (scan.state == ScanState::Complete) {
      scan.clean = stray_ctl == 0;
      return scan;
    }
  }
  // No terminator in the first max_bytes: if we already hold that many, the head can
  // only end beyond the limit.
  scan.state = input.size() >= max_bytes ? ScanState::TooLarge : ScanState::Incomplete;
  return scan;
}

// Maps the scan to a result: Incomplete, an Error, or Complete with head_length set
// (the caller then parses the head).
ParseResult scan_result(const Scan& scan, std::string_view what_too_large) {
  switch (scan.state) {
    case ScanState::Incomplete:
      return ParseResult{};
    case ScanState::BareLf:
      return error(400, "bare LF in message head, lines must end in CRLF (RFC 9112 2.2)");
    case ScanState::TooLarge:
      return error(431, what_too_large);
    case ScanState::Complete:
      break;
  }
  ParseResult r;
  r.state = ParseState::Complete;
  r.head_length = scan.length;
  return r;
}

// RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT (case-sensitive).
// Returns 0 when valid and supported (1.0, 1.1), else the status to answer with.
int parse_version(std::string_view v, int& minor) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
      !is_digit(v[7])) {
    return 400;
  }
  if (v[5] != '1' || v[7] > '1') return 505;
  minor = v[7] - '0';
  return 0;
}

ParseResult version_error(int status) {
  return status == 505 ? error(505, "HTTP version not supported, use HTTP/1.1")
                       : error(400, "invalid HTTP version");
}

// Why a field line whose name is not token characters followed by a colon is refused.
ParseResult field_line_error(std::string_view line) {
  // RFC 9112 5.2: obs-fold is rejected; RFC 9112 2.2: so is whitespace between the
  // start line and the first field.
  if (is_ows(line.front()))
    return error(400, "obsolete line folding in header field (RFC 9112 5.2)");
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return error(400, "header field without colon");
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) return error(400, "empty header field name");
  // RFC 9112 5.1: no whitespace between field name and colon (request smuggling).
  if (is_ows(name.back()))
    return error(400, "whitespace before colon in header field (RFC 9112 5.1)");
  return error(400, "invalid header field name");
}

// Header section: field lines from `pos` up to the empty line that ends the head.
ParseResult parse_fields(std::string_view head, std::size_t pos, Lines& lines, const Scan& scan,
                         const Limits& limits, std::vector<Header>& headers) {
  headers.clear();
  // Room for a typical head at once (no byte-by-byte count of its lines first).
  headers.reserve(std::min<std::size_t>(kTypicalFields, limits.max_headers));

  for (;;) {
    const std::string_view line = lines.next(head, pos);
    if (line.empty()) break;  // the empty line ending the head
    if (headers.size() == limits.max_headers) return error(431, "too many header fields");
    // The name is token characters up to the colon: one pass finds and checks it. The
    // line's CR follows it in `head` (Lines::next) and is no tchar: it ends the walk
    // without a bound check per byte.
    std::size_t colon = 0;
    while (kTchar[static_cast<unsigned char>(line.data()[colon])]) ++colon;
    if (colon == 0 || colon == line.size() || line[colon] != ':') return field_line_error(line);
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    // RFC 9110 5.5: CR, LF, NUL and other CTLs are not allowed in field values (a clean
    // head has none anywhere).
    if (!scan.clean && !all_text(value)) {
      return error(400, "invalid character in header field value");
    }
    headers.push_back(Header{name, trim_ows(value)});
  }

  // RFC 9112 6.3: framing that two parsers could read differently is refused
  // (request smuggling): CL with TE, several CLs, or a CL that is not 1*DIGIT.
  std::size_t content_lengths = 0;
  bool transfer_encoding = false;
  for (const Header& h : headers) {
    if (iequals(h.name, "content-length")) {
      ++content_lengths;
      // Up to 18 digits: fits in int64 whatever the value.
      if (h.value.empty() || h.value.size() > 18 ||
          !std::all_of(h.value.begin(), h.value.end(), is_digit)) {
        return error(400, "invalid Content-Length (RFC 9112 6.3)");
      }
    } else if (iequals(h.name, "transfer-encoding")) {
      transfer_encoding = true;
    }
  }
  if (content_lengths > 1) return error(400, "multiple Content-Length fields (RFC 9112 6.3)");
  if (content_lengths == 1 && transfer_encoding) {
    return error(400, "both Content-Length and Transfer-Encoding (RFC 9112 6.3)");
  }

  ParseResult r;
  r.state = ParseState::Complete;
  return r;
}

const Header* find_header(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return &h;
  }
  return nullptr;
}

std::size_t count_headers(const std::vector<Header>& headers, std::string_view name) {
  return static_cast<std::size_t>(std::count_if(
      headers.begin(), headers.end(), [name](const Header& h) { return iequals(h.name, name); }));
}

// Re-points a view that lay in [old_base, old_base + old_size) at the same offset in
// new_base. Other views (empty, or pointing elsewhere) are returned unchanged.
std::string_view rebase(std::string_view v, const char* old_base, std::size_t old_size,
                        const char* new_base) {
  if (v.data() == nullptr || old_base == nullptr) return v;
  const std::less_equal<> le;
  if (!le(old_base, v.data()) || !le(v.data() + v.size(), old_base + old_size)) return v;
  return {new_base + (v.data() - old_base), v.size()};
}

void rebase_headers(std::vector<Header>& headers, const char* old_base, std::size_t old_size,
                    const char* new_base) {
  for (Header& h : headers) {
    h.name = rebase(h.name, old_base, old_size, new_base);
    h.value = rebase(h.value, old_base, old_size, new_base);
  }
}

// Moves `from`'s bytes into `to` and leaves neither with a spare buffer. A plain
// `to = std::move(from)` from a short (inline) string copies it into `to`'s heap buffer
// and keeps that buffer, so `head = RequestHead()` held on to the old head's bytes: an
// HTTP/1.1 connection kept its last request head (about 150 bytes) for the whole life of
// the WebSocket it upgraded to (issue 13).
void take_raw(std::string& to, std::string& from) {
  to.swap(from);
  std::string().swap(from);
}

}  // namespace

// ---- RequestHead / ResponseHead: copies and moves keep the views pointing into raw ----

RequestHead::RequestHead(const RequestHead& other) {
  *this = other;
}
RequestHead::RequestHead(RequestHead&& other) noexcept {
  *this = std::move(other);
}

RequestHead& RequestHead::operator=(const RequestHead& other) {
  if (this == &other) return *this;
  raw = other.raw;
  method = rebase(other.method, other.raw.data(), other.raw.size(), raw.data());
  target = rebase(other.target, other.raw.data(), other.raw.size(), raw.data());
  version_minor = other.version_minor;
  headers = other.headers;
  rebase_headers(headers, other.raw.data(), other.raw.size(), raw.data());
  return *this;
}

RequestHead& RequestHead::operator=(RequestHead&& other) noexcept {
  if (this == &other) return *this;
  // Taken before the move: a short string is copied out of its inline buffer, so the
  // views must be re-pointed; a long one keeps its heap buffer and the rebase is a no-op.
  const char* old_base = other.raw.data();
  const std::size_t old_size = other.raw.size();
  take_raw(raw, other.raw);
  method = rebase(other.method, old_base, old_size, raw.data());
  target = rebase(other.target, old_base, old_size, raw.data());
  version_minor = other.version_minor;
  headers = std::move(other.headers);
  rebase_headers(headers, old_base, old_size, raw.data());
  other.method = {};
  other.target = {};
  other.headers.clear();
  return *this;
}

ResponseHead::ResponseHead(const ResponseHead& other) {
  *this = other;
}
ResponseHead::ResponseHead(ResponseHead&& other) noexcept {
  *this = std::move(other);
}

ResponseHead& ResponseHead::operator=(const ResponseHead& other) {
  if (this == &other) return *this;
  raw = other.raw;
  version_minor = other.version_minor;
  status = other.status;
  reason = rebase(other.reason, other.raw.data(), other.raw.size(), raw.data());
  headers = other.headers;
  rebase_headers(headers, other.raw.data(), other.raw.size(), raw.data());
  return *this;
}

ResponseHead& ResponseHead::operator=(ResponseHead&& other) noexcept {
  if (this == &other) return *this;
  const char* old_base = other.raw.data();
  const std::size_t old_size = other.raw.size();
  take_raw(raw, other.raw);
  version_minor = other.version_minor;
  status = other.status;
  reason = rebase(other.reason, old_base, old_size, raw.data());
  headers = std::move(other.headers);
  rebase_headers(headers, old_base, old_size, raw.data());
  other.reason = {};
  other.headers.clear();
  return *this;
}

const Header* RequestHead::find(std::string_view name) const {
  return find_header(headers, name);
}
std::size_t RequestHead::count(std::string_view name) const {
  return count_headers(headers, name);
}
const Header* ResponseHead::find(std::string_view name) const {
  return find_header(headers, name);
}
std::size_t ResponseHead::count(std::string_view name) const {
  return count_headers(headers, name);
}

// ---- parsing ----

ParseResult parse_request_head(std::string_view input, const Limits& limits, RequestHead& out) {
  const Scan scan = find_head_end(input, limits.max_head_bytes, /*skip_empty_lines=*/true);
  ParseResult result = scan_result(scan, "request header fields too large");
  if (result.state != ParseState::Complete) return result;

  // Copy first, then take every view from the copy.
  out.raw.assign(input.data(), scan.length);
  const std::string_view head(out.raw);
  std::size_t pos = scan.start;
  Lines lines(scan);

  // RFC 9112 3: request-line = method SP request-target SP HTTP-version CRLF
  const std::string_view line = lines.next(head, pos);
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return error(400, "malformed request line");
  out.method = line.substr(0, sp1);
  if (!is_token(out.method)) return error(400, "invalid method");
  const std::string_view rest = line.substr(sp1 + 1);
  const std::size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return error(400, "malformed request line");
  out.target = rest.substr(0, sp2);
  // RFC 9112 3.2: the target is a URI form: visible ASCII only, no SP or CTL.
  if (out.target.empty() || !std::all_of(out.target.begin(), out.target.end(), is_vchar)) {
    return error(400, "invalid request-target");
  }
  if (const int status = parse_version(rest.substr(sp2 + 1), out.version_minor); status != 0) {
    return version_error(status);
  }

  ParseResult fields = parse_fields(head, pos, lines, scan, limits, out.headers);
  if (fields.state != ParseState::Complete) return fields;
  return result;
}

ParseResult parse_response_head(std::string_view input, const Limits& limits, ResponseHead& out) {
  const Scan scan = find_head_end(input, limits.max_head_bytes, /*skip_empty_lines=*/false);
  ParseResult result = scan_result(scan, "response head too large");
  if (result.state != ParseState::Complete) return result;

  out.raw.assign(input.data(), scan.length);
  const std::string_view head(out.raw);
  std::size_t pos = scan.start;
  Lines lines(scan);

  // RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
  const std::string_view line = lines.next(head, pos);
  if (line.size() < 8) return error(400, "malformed status line");
  if (const int status = parse_version(line.substr(0, 8), out.version_minor); status != 0) {
    return version_error(status);
  }
  if (line.size() < 12 || line[8] != ' ') return error(400, "malformed status line");
  const std::string_view code = line.substr(9, 3);
  // RFC 9110 15: a status code is three digits, 100..599.
  if (!std::all_of(code.begin(), code.end(), is_digit) || code[0] < '1' || code[0] > '5' ||
      (line.size() > 12 && line[12] != ' ')) {
    return error(400, "invalid status code");
  }
  out.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  // The SP before an empty reason is required of senders (RFC 9112 4) but commonly
  // missing; "HTTP/1.1 101\r\n" is accepted with an empty reason.
  out.reason = line.size() > 12 ? line.substr(13) : line.substr(12);
  if (!scan.clean && !all_text(out.reason)) {
    return error(400, "invalid reason phrase");
  }

  ParseResult fields = parse_fields(head, pos, lines, scan, limits, out.headers);
  if (fields.state != ParseState::Complete) return fields;
  return result;
}

// RFC 9110 5.6.1: #element lists, OWS around commas, empty elements ignored.
bool header_has_token(std::string_view value, std::string_view token) {
  if (token.empty()) return false;
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace wsgate::http1
