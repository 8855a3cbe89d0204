#include "metrics/text_escape.h"

namespace wsgate::metrics {
namespace {

unsigned char byte(std::string_view s, std::size_t i) {
  return static_cast<unsigned char>(s[i]);
}

// \xHH (`unicode` false) or \u00HH, for a value below 0x100.
void append_hex(std::string& out, bool unicode, unsigned value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out += unicode ? "\\u00" : "\\x";
  out += kDigits[(value >> 4) & 0xf];
  out += kDigits[value & 0xf];
}

// C1 controls U+0080..U+009F, encoded as C2 80..C2 9F: some terminals act on them
// (U+009B is CSI), so they are escaped like C0 controls.
bool is_c1(std::string_view s, std::size_t i, std::size_t len) {
  return len == 2 && byte(s, i) == 0xc2 && byte(s, i + 1) < 0xa0;
}

bool is_continuation(unsigned char c) {
  return (c & 0xc0) == 0x80;
}

// Escapes for quote, backslash and the common C0 controls, shared by both formats.
const char* short_escape(unsigned char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return nullptr;
  }
}

// Walks `s`, appending printable text as is and calling `escape(byte)` for a C0 control
// or DEL or a byte outside well-formed UTF-8, `c1(code point)` for a C1 control. With
// `ascii_only` (printable()), every non-ASCII byte goes to `escape` and '"' stays.
template <class Escape, class C1>
void walk(std::string& out, std::string_view s, bool ascii_only, Escape&& escape, C1&& c1) {
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = byte(s, i);
    if (c == '"' && ascii_only) {  // printable(): no quotes around it to protect
      out += '"';
      ++i;
    } else if (const char* e = short_escape(c)) {
      out += e;
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      escape(c);
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (const std::size_t len = ascii_only ? 0 : utf8_sequence_length(s, i); len == 0) {
      escape(c);
      ++i;
    } else if (is_c1(s, i, len)) {
      c1(byte(s, i + 1));
      i += len;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
}

}  // namespace

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const unsigned char c = byte(s, i);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte (RFC 3629 4)
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;  // no overlong forms
    if (c == 0xed) hi = 0x9f;  // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;  // no overlong forms
    if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(s, i + 1) < lo || byte(s, i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if (!is_continuation(byte(s, i + k))) return 0;
  return len;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  const auto u = [&out](unsigned code) { append_hex(out, true, code); };
  walk(out, s, false, u, u);
  out += '"';
}

void append_logfmt_value(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "\"\"";
    return;
  }
  bool bare = true;
  for (std::size_t i = 0; i < s.size() && bare;) {
    const unsigned char c = byte(s, i);
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      bare = false;
    } else if (c < 0x80) {
      ++i;
    } else {
      const std::size_t len = utf8_sequence_length(s, i);
      bare = len != 0 && !is_c1(s, i, len);
      i += len;
    }
  }
  if (bare) {
    out += s;
    return;
  }
  out += '"';
  walk(
      out, s, false, [&out](unsigned c) { append_hex(out, false, c); },
      [&out](unsigned code) { append_hex(out, true, code); });
  out += '"';
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto x = [&out](unsigned c) { append_hex(out, false, c); };
  walk(out, s, true, x, x);
  return out;
}

}  // namespace wsgate::metrics
