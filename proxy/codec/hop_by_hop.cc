#include "proxy/codec/hop_by_hop.h"

namespace wsgate::http {

using ascii::trim_ows;  // RFC 9110 5.6.1: list members are separated by commas and OWS

ConnectionOptions::ConnectionOptions(const std::vector<http1::Header>& headers)
    : headers_(headers) {
  for (const http1::Header& h : headers) {
    if (!ascii::iequals(h.name, "connection")) continue;
    std::string_view value = h.value;
    while (!value.empty()) {
      const std::size_t comma = value.find(',');
      const std::string_view token = trim_ows(value.substr(0, comma));
      if (!token.empty()) {
        if (count_ < tokens_.size()) tokens_[count_] = token;
        ++count_;
      }
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
}

bool ConnectionOptions::names(std::string_view field) const {
  if (count_ <= tokens_.size()) {
    for (std::size_t i = 0; i < count_; ++i)
      if (ascii::iequals(tokens_[i], field)) return true;
    return false;
  }
  for (const http1::Header& h : headers_)  // many options: look at all
    if (ascii::iequals(h.name, "connection") && http1::header_has_token(h.value, field))
      return true;
  return false;
}

}  // namespace wsgate::http
