// HTTP/1.1 message body framing (RFC 9112 6 and 7): which framing a message uses, and a
// decoder that walks the framing of a body in an input buffer. A pure codec: it looks
// at bytes the caller shows it and says what to do with them; it moves nothing itself,
// so the caller can move the content between evbuffers without copying it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/codec/http1_parser.h"

namespace wsgate::http1 {

enum class BodyKind {
  None,        // no content
  Length,      // Content-Length bytes
  Chunked,     // Transfer-Encoding: chunked
  UntilClose,  // responses only: the content ends when the connection does
};

struct BodyFraming {
  BodyKind kind = BodyKind::None;
  uint64_t length = 0;   // with Length
  int error_status = 0;  // non-zero: the message cannot be framed safely
  std::string error_reason;
  [[nodiscard]] bool ok() const { return error_status == 0; }
};

// RFC 9112 6.1-6.3 for a request (the parser already refused CL with TE, several CLs
// and a non-numeric CL): Transfer-Encoding must be exactly "chunked" in one field
// (anything else -> 501 for an unknown coding, 400 for a list or a repeated field: a
// recipient that reads it differently would frame the body differently); HTTP/1.0 with
// Transfer-Encoding -> 400 (RFC 9112 6.1: faulty framing). Content-Length 0 is None.
BodyFraming request_body_framing(const RequestHead& head);

// RFC 9112 6.3 for a response to `method`: HEAD, 1xx, 204 and 304 have no content;
// Transfer-Encoding "chunked" is Chunked, any other coding -> error (502: the gateway
// would have to pass on a coding it does not decode); Content-Length is Length;
// neither is UntilClose.
BodyFraming response_body_framing(const ResponseHead& head, std::string_view method);

// What the caller does next with its buffered input (see BodyDecoder::next).
struct BodyStep {
  enum class Action {
    NeedMore,  // nothing to do until more bytes arrive
    Data,      // the next `n` bytes are content: take up to n, then call took(k)
    Skip,      // the next `n` bytes are framing: discard exactly n
    Done,      // the body is complete; bytes after it belong to the next message
    Error,     // malformed framing: `reason` (one line), answer 400
  };
  Action action = Action::NeedMore;
  std::size_t n = 0;
  std::string_view reason;
};

class BodyDecoder {
 public:
  // A chunk-size line (with extensions) or a trailer line is at most this long.
  static constexpr std::size_t kMaxLine = 4096;
  // All trailer lines together are at most this long.
  static constexpr std::size_t kMaxTrailers = 16 * 1024;

  BodyDecoder() = default;
  explicit BodyDecoder(const BodyFraming& framing);

  // `front`: the first bytes of the buffered input: at least min(available, kMaxLine + 2)
  // of them, or fewer that hold a whole line (up to its LF); none is needed while
  // needs_front() is false. `available`: how many bytes are buffered in all.
  // The decoder's state moves on with each Skip it returns, so the caller must discard
  // exactly those bytes before the next call.
  BodyStep next(std::string_view front, std::size_t available);
  // False while the decoder counts content (or is done): next() looks only at
  // `available` then, so the caller need not make the front bytes contiguous.
  [[nodiscard]] bool needs_front() const {
    return state_ == State::ChunkSize || state_ == State::ChunkDataEnd || state_ == State::Trailers;
  }
  // After Data: the caller took `k` <= n content bytes.
  void took(std::size_t k);
  // The input ended (EOF): true when that ends the body cleanly (UntilClose, or Done).
  [[nodiscard]] bool complete_at_eof();

  [[nodiscard]] bool done() const { return state_ == State::Done; }
  [[nodiscard]] uint64_t content_bytes() const { return content_; }
  // Input bytes certain to come before the body ends, counted from the decoder's
  // position (some may be buffered already): the rest of a Content-Length body or of the
  // current chunk with its CRLF; UINT64_MAX for a body delimited by the close (the EOF
  // ends any wait); 0 when unknown (between chunks, trailers, done).
  [[nodiscard]] uint64_t bytes_expected() const;
  // Inside a chunk's data: its content bytes still to come (without the CRLF); else 0.
  [[nodiscard]] uint64_t chunk_data_left() const { return state_ == State::ChunkData ? left_ : 0; }
  [[nodiscard]] BodyKind kind() const { return kind_; }

 private:
  enum class State {
    Length,
    UntilClose,
    ChunkSize,
    ChunkData,
    ChunkDataEnd,
    Trailers,
    Done,
    Failed
  };

  BodyStep fail(std::string_view reason);
  BodyStep chunk_size(std::string_view front, std::size_t available);
  BodyStep trailer(std::string_view front, std::size_t available);

  BodyKind kind_ = BodyKind::None;
  State state_ = State::Done;
  uint64_t left_ = 0;     // Length / ChunkData: content bytes still to come
  uint64_t content_ = 0;  // content bytes so far
  std::size_t trailer_bytes_ = 0;
};

// RFC 9112 7.1: "1*HEXDIG [ chunk-ext ]" (the line without its CRLF) -> the size, or
// false when malformed (bad digits, overflow past 2^60, a malformed extension).
bool parse_chunk_size_line(std::string_view line, uint64_t& size);

}  // namespace wsgate::http1
