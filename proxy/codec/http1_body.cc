// HTTP/1.1 body framing and the body decoder (RFC 9112 6, 7). Strict on purpose: a
// proxy that reads a body's end differently from the server behind it lets a client
// smuggle a second request inside the first, so anything ambiguous is an error.
#include "proxy/codec/http1_body.h"

#include <algorithm>

namespace wsgate::http1 {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}
bool is_ows(char c) {
  return c == ' ' || c == '\t';
}
// RFC 9110 5.6.2 tchar.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_field_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return c == '\t' || (u >= 0x20 && u != 0x7f);
}

void skip_ows(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_ows(s[i])) ++i;
}
std::size_t token_end(std::string_view s, std::size_t i) {
  while (i < s.size() && is_tchar(s[i])) ++i;
  return i;
}

// RFC 9110 5.6.4 quoted-string starting at s[i] == '"'; returns the index after it, or
// npos when it is not closed or holds a CTL.
std::size_t quoted_end(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i == s.size() || !is_field_char(s[i])) return std::string_view::npos;
      continue;
    }
    if (!is_field_char(c)) return std::string_view::npos;
  }
  return std::string_view::npos;
}

BodyFraming framing_error(int status, std::string reason) {
  BodyFraming f;
  f.error_status = status;
  f.error_reason = std::move(reason);
  return f;
}

// Transfer-Encoding: exactly one field whose value is exactly "chunked".
BodyFraming transfer_coding(const std::vector<Header>& headers, int unknown_status) {
  std::size_t fields = 0;
  std::string_view value;
  for (const Header& h : headers) {
    if (iequals(h.name, "transfer-encoding")) {
      ++fields;
      value = h.value;
    }
  }
  if (fields > 1) return framing_error(400, "more than one Transfer-Encoding field (RFC 9112 6.1)");
  if (!iequals(value, "chunked")) {
    if (value.find(',') != std::string_view::npos || header_has_token(value, "chunked"))
      return framing_error(400, "Transfer-Encoding must be exactly \"chunked\" (RFC 9112 6.1)");
    return framing_error(unknown_status, "unsupported Transfer-Encoding (RFC 9112 6.1)");
  }
  BodyFraming f;
  f.kind = BodyKind::Chunked;
  return f;
}

uint64_t content_length(const Header& h) {
  // The parser accepted 1..18 digits only (RFC 9112 6.3).
  uint64_t n = 0;
  for (char c : h.value) n = n * 10 + static_cast<uint64_t>(c - '0');
  return n;
}

}  // namespace

BodyFraming request_body_framing(const RequestHead& head) {
  if (head.count("transfer-encoding") != 0) {
    // RFC 9112 6.1: HTTP/1.0 has no chunked coding; a 1.0 request carrying the field
    // was framed by something that does not speak it.
    if (head.version_minor == 0)
      return framing_error(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)");
    return transfer_coding(head.headers, 501);
  }
  BodyFraming f;
  if (const Header* cl = head.find("content-length"); cl != nullptr) {
    f.length = content_length(*cl);
    f.kind = f.length == 0 ? BodyKind::None : BodyKind::Length;
  }
  return f;  // RFC 9112 6.3 item 7: neither field, no content
}

BodyFraming response_body_framing(const ResponseHead& head, std::string_view method) {
  BodyFraming f;
  // RFC 9112 6.3 item 1: these never have content, whatever the fields say.
  if (method == "HEAD" || (head.status >= 100 && head.status < 200) || head.status == 204 ||
      head.status == 304)
    return f;
  if (head.count("transfer-encoding") != 0) {
    BodyFraming te = transfer_coding(head.headers, 502);
    if (!te.ok()) te.error_status = 502;
    return te;
  }
  if (const Header* cl = head.find("content-length"); cl != nullptr) {
    f.length = content_length(*cl);
    f.kind = f.length == 0 ? BodyKind::None : BodyKind::Length;
    return f;
  }
  f.kind = BodyKind::UntilClose;  // RFC 9112 6.3 item 8
  return f;
}

bool parse_chunk_size_line(std::string_view line, uint64_t& size) {
  std::size_t i = 0;
  uint64_t n = 0;
  while (i < line.size() && is_hex(line[i])) {
    if (n >> 56 != 0) return false;  // beyond 2^60: no real body, and it would overflow
    n = n * 16 + static_cast<uint64_t>(hex_value(line[i]));
    ++i;
  }
  if (i == 0) return false;
  // RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
  while (i < line.size()) {
    skip_ows(line, i);
    if (i == line.size() || line[i] != ';') return false;
    ++i;
    skip_ows(line, i);
    const std::size_t name_end = token_end(line, i);
    if (name_end == i) return false;
    i = name_end;
    std::size_t j = i;
    skip_ows(line, j);
    if (j < line.size() && line[j] == '=') {
      ++j;
      skip_ows(line, j);
      if (j < line.size() && line[j] == '"') {
        j = quoted_end(line, j);
        if (j == std::string_view::npos) return false;
      } else {
        const std::size_t value_end = token_end(line, j);
        if (value_end == j) return false;
        j = value_end;
      }
      i = j;
    }
  }
  size = n;
  return true;
}

BodyDecoder::BodyDecoder(const BodyFraming& framing) : kind_(framing.kind) {
  switch (framing.kind) {
    case BodyKind::None:
      state_ = State::Done;
      break;
    case BodyKind::Length:
      state_ = framing.length == 0 ? State::Done : State::Length;
      left_ = framing.length;
      break;
    case BodyKind::Chunked:
      state_ = State::ChunkSize;
      break;
    case BodyKind::UntilClose:
      state_ = State::UntilClose;
      break;
  }
}

BodyStep BodyDecoder::fail(std::string_view reason) {
  state_ = State::Failed;
  return {BodyStep::Action::Error, 0, reason};
}

BodyStep BodyDecoder::next(std::string_view front, std::size_t available) {
  switch (state_) {
    case State::Done:
      return {BodyStep::Action::Done, 0, {}};
    case State::Failed:
      return {BodyStep::Action::Error, 0, "malformed body"};
    case State::Length:
    case State::ChunkData:
      if (available == 0) return {};
      return {BodyStep::Action::Data,
              static_cast<std::size_t>(std::min<uint64_t>(left_, available)),
              {}};
    case State::UntilClose:
      if (available == 0) return {};
      return {BodyStep::Action::Data, available, {}};
    case State::ChunkSize:
      return chunk_size(front, available);
    case State::ChunkDataEnd:
      if (available < 2) {
        if (available == 1 && front[0] != '\r')
          return fail("chunk data not followed by CRLF (RFC 9112 7.1)");
        return {};
      }
      if (front[0] != '\r' || front[1] != '\n')
        return fail("chunk data not followed by CRLF (RFC 9112 7.1)");
      state_ = State::ChunkSize;
      return {BodyStep::Action::Skip, 2, {}};
    case State::Trailers:
      return trailer(front, available);
  }
  return {};
}

BodyStep BodyDecoder::chunk_size(std::string_view front, std::size_t available) {
  const std::size_t shown = std::min(front.size(), available);
  const std::size_t lf = front.substr(0, shown).find('\n');
  if (lf == std::string_view::npos) {
    if (shown > kMaxLine) return fail("chunk size line too long");
    // A CR may only come right before the LF: "5\r" then anything else is malformed.
    const std::size_t cr = front.substr(0, shown).find('\r');
    if (cr != std::string_view::npos && cr + 1 < shown)
      return fail("invalid chunk size line (RFC 9112 7.1)");
    return {};
  }
  if (lf == 0 || front[lf - 1] != '\r')
    return fail("bare LF in chunk size line, lines must end in CRLF (RFC 9112 2.2)");
  if (lf > kMaxLine) return fail("chunk size line too long");
  uint64_t size = 0;
  if (!parse_chunk_size_line(front.substr(0, lf - 1), size))
    return fail("invalid chunk size or extension (RFC 9112 7.1)");
  if (size == 0) {
    state_ = State::Trailers;
  } else {
    state_ = State::ChunkData;
    left_ = size;
  }
  return {BodyStep::Action::Skip, lf + 1, {}};
}

BodyStep BodyDecoder::trailer(std::string_view front, std::size_t available) {
  const std::size_t shown = std::min(front.size(), available);
  const std::size_t lf = front.substr(0, shown).find('\n');
  if (lf == std::string_view::npos) {
    if (shown > kMaxLine) return fail("trailer field too long");
    return {};
  }
  if (lf == 0 || front[lf - 1] != '\r')
    return fail("bare LF in trailer section, lines must end in CRLF (RFC 9112 2.2)");
  const std::string_view line = front.substr(0, lf - 1);
  if (line.empty()) {
    state_ = State::Done;
    return {BodyStep::Action::Skip, 2, {}};
  }
  trailer_bytes_ += lf + 1;
  if (trailer_bytes_ > kMaxTrailers) return fail("trailer section too large");
  // RFC 9112 7.1.2: trailer fields have the syntax of header fields; they are dropped
  // here (RFC 9110 6.5.1 lets the recipient that removes the chunked coding do so).
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 || token_end(line, 0) != colon)
    return fail("invalid trailer field (RFC 9112 7.1.2)");
  const std::string_view value = line.substr(colon + 1);
  if (!std::all_of(value.begin(), value.end(), is_field_char))
    return fail("invalid trailer field (RFC 9112 7.1.2)");
  return {BodyStep::Action::Skip, lf + 1, {}};
}

void BodyDecoder::took(std::size_t k) {
  content_ += k;
  if (state_ == State::Length || state_ == State::ChunkData) {
    left_ -= std::min<uint64_t>(left_, k);
    if (left_ == 0) state_ = state_ == State::Length ? State::Done : State::ChunkDataEnd;
  }
}

uint64_t BodyDecoder::bytes_expected() const {
  switch (state_) {
    case State::Length:
      return left_;
    case State::ChunkData:
      return left_ + 2;  // the chunk's CRLF
    case State::UntilClose:
      return UINT64_MAX;
    default:
      return 0;
  }
}

bool BodyDecoder::complete_at_eof() {
  if (state_ == State::UntilClose) state_ = State::Done;
  return state_ == State::Done;
}

}  // namespace wsgate::http1
