// What an HTTP/1.1 body decoder (proxy/codec/http1_body.h) is shown of an input evbuffer.
// Content is only counted (BodyDecoder::needs_front() is false there): nothing is shown.
// A chunk-size line, the CRLF after chunk data or a trailer line is read from the first
// chain where it lies whole in it, without a copy; only a line that spans chains is
// pulled up (at most kMaxLine + 2 bytes). Pulling up kMaxLine + 2 bytes before every
// step copied up to 4 KiB of chunk data each time a chunk began near the end of a chain.
#pragma once

#include <event2/buffer.h>

#include <string_view>

#include "proxy/codec/http1_body.h"

namespace wsgate::proxy {

// The `front` for decoder.next(front, available), `available` being in's length.
std::string_view body_front(evbuffer* in, const http1::BodyDecoder& decoder, std::size_t available);

}  // namespace wsgate::proxy
