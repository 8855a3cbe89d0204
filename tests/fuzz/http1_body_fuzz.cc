// HTTP/1.1 message bodies (proxy/codec/http1_body.h): a client's request content and an
// upstream's response content, both untrusted. Input: byte 0 picks the framing (chunked,
// Content-Length from bytes 1-2, or until close), byte 3 the piece size in which the rest
// arrives. Properties: the decoder, fed the same bytes whole, in those pieces and byte by
// byte, sees the same content, the same verdict and leaves the same bytes for the next
// message; every step stays inside what is buffered; errors are one line; the content
// re-encoded as chunks decodes to itself. Also: request_body_framing on the input parsed
// as a request head never says anything but a framing or 400/501.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/codec/http1_body.h"
#include "tests/fuzz/fuzz_check.h"

namespace http1 = wsgate::http1;
using wsgate::fuzz::is_one_line;

namespace {

struct Outcome {
  std::string content;
  enum class Verdict { Done, Error, NeedMore } verdict = Verdict::NeedMore;
  std::string rest;
};

Outcome decode(const http1::BodyFraming& framing, std::string_view input, std::size_t piece,
               bool eof) {
  http1::BodyDecoder d(framing);
  Outcome out;
  std::string buffered;
  std::size_t fed = 0;
  // Each step either consumes bytes, feeds bytes or ends: bounded by twice the input.
  for (std::size_t guard = 0; guard < 4 * (input.size() + 8); ++guard) {
    const http1::BodyStep step = d.next(
        std::string_view(buffered).substr(0, http1::BodyDecoder::kMaxLine + 2), buffered.size());
    switch (step.action) {
      case http1::BodyStep::Action::Data:
        FUZZ_CHECK(step.n > 0 && step.n <= buffered.size());
        out.content.append(buffered, 0, step.n);
        buffered.erase(0, step.n);
        d.took(step.n);
        FUZZ_CHECK(d.content_bytes() == out.content.size());
        continue;
      case http1::BodyStep::Action::Skip:
        FUZZ_CHECK(step.n > 0 && step.n <= buffered.size());
        buffered.erase(0, step.n);
        continue;
      case http1::BodyStep::Action::Done:
        out.verdict = Outcome::Verdict::Done;
        break;
      case http1::BodyStep::Action::Error:
        FUZZ_CHECK(!step.reason.empty() && is_one_line(step.reason));
        out.verdict = Outcome::Verdict::Error;
        break;
      case http1::BodyStep::Action::NeedMore:
        if (fed < input.size()) {
          const std::size_t n = std::min(piece, input.size() - fed);
          buffered.append(input.substr(fed, n));
          fed += n;
          continue;
        }
        if (eof && d.complete_at_eof()) out.verdict = Outcome::Verdict::Done;
        break;
    }
    out.rest = buffered;
    out.rest.append(input.substr(fed));
    return out;
  }
  FUZZ_CHECK(false && "decoder made no progress");
  return out;
}

bool same(const Outcome& a, const Outcome& b) {
  // The rest only matters once the body ended: before that it is all unconsumed input.
  return a.content == b.content && a.verdict == b.verdict &&
         (a.verdict != Outcome::Verdict::Done || a.rest == b.rest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 4, size - 4);
  http1::BodyFraming framing;
  switch (data[0] % 3) {
    case 0:
      framing.kind = http1::BodyKind::Chunked;
      break;
    case 1:
      framing.kind = http1::BodyKind::Length;
      framing.length = (std::size_t{data[1]} << 8) | data[2];
      break;
    default:
      framing.kind = http1::BodyKind::UntilClose;
      break;
  }
  const std::size_t piece = std::size_t{data[3]} + 1;
  const bool eof = (data[0] & 0x80) != 0;

  const Outcome whole = decode(framing, input, input.size() + 1, eof);
  FUZZ_CHECK(same(whole, decode(framing, input, piece, eof)));
  FUZZ_CHECK(same(whole, decode(framing, input, 1, eof)));
  if (framing.kind == http1::BodyKind::Length && whole.verdict == Outcome::Verdict::Done)
    FUZZ_CHECK(whole.content.size() == framing.length);

  // Re-encoded as one chunk plus the last chunk, the content decodes to itself.
  if (!whole.content.empty()) {
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx;e=\"v\"\r\n", whole.content.size());
    const std::string again = size_line + whole.content + "\r\n0\r\nT: 1\r\n\r\n";
    http1::BodyFraming chunked;
    chunked.kind = http1::BodyKind::Chunked;
    const Outcome round = decode(chunked, again, piece, false);
    FUZZ_CHECK(round.verdict == Outcome::Verdict::Done);
    FUZZ_CHECK(round.content == whole.content);
    FUZZ_CHECK(round.rest.empty());
  }

  // The input as a request head: framing is decided or refused with 400/501 only.
  http1::RequestHead head;
  if (http1::parse_request_head(input, http1::Limits{}, head).state ==
      http1::ParseState::Complete) {
    const http1::BodyFraming f = http1::request_body_framing(head);
    FUZZ_CHECK(f.ok() || f.error_status == 400 || f.error_status == 501);
    if (!f.ok()) FUZZ_CHECK(is_one_line(f.error_reason));
  }
  return 0;
}
