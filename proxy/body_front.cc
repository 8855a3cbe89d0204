#include "proxy/body_front.h"

#include <algorithm>

namespace wsgate::proxy {

std::string_view body_front(evbuffer* in, const http1::BodyDecoder& decoder,
                            std::size_t available) {
  if (available == 0 || !decoder.needs_front()) return {};
  const std::size_t wanted = std::min(available, http1::BodyDecoder::kMaxLine + 2);
  evbuffer_iovec first{};
  if (evbuffer_peek(in, -1, nullptr, &first, 1) >= 1) {
    const std::string_view chain(static_cast<const char*>(first.iov_base),
                                 std::min(first.iov_len, wanted));
    // The decoder needs a whole line, or all it may look at when no line ends there.
    if (chain.size() == wanted || chain.find('\n') != std::string_view::npos) return chain;
  }
  const unsigned char* p = evbuffer_pullup(in, static_cast<ev_ssize_t>(wanted));
  return {reinterpret_cast<const char*>(p), wanted};
}

}  // namespace wsgate::proxy
