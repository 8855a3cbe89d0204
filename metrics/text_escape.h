// Escaping of untrusted text (client targets, header names, close reasons, certificate
// subjects) for the access log, the JSON admin answers and log lines, so no byte a
// client chooses can end a line, forge another, or drive the reader's terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wsgate::metrics {

// The length of the well-formed UTF-8 sequence that starts at s[i] (RFC 3629 4: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 when there is none.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

// A JSON string literal (RFC 8259 7), quotes included. Quote and backslash are escaped;
// C0 and C1 controls and DEL become \uXXXX; each byte that is not part of well-formed
// UTF-8 becomes \u00XX (its Latin-1 reading). Other UTF-8 passes through.
void append_json_string(std::string& out, std::string_view s);

// A logfmt value: bare when it has only printable ASCII or UTF-8 and no space, quote,
// '=' or backslash; otherwise quoted, with \" \\ \n \r \t, \xHH for other C0 controls,
// DEL and bytes that are not UTF-8, and \u00XX for C1 controls. "" for the empty value.
void append_logfmt_value(std::string& out, std::string_view s);

// One line of printable ASCII: \\ \n \r \t, and \xHH for every other control or
// non-ASCII byte ('"' stays as is). For reasons built from client bytes.
std::string printable(std::string_view s);

}  // namespace wsgate::metrics
