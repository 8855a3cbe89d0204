// The request path the gateway routes on and sends upstream: one canonical form per
// resource, so a route (a security boundary: its own upstream, Origin policy, limits)
// cannot be missed or crossed by spelling the same path differently. Pure.
#pragma once

#include <string>
#include <string_view>

#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

// RFC 3986 6.2.2 normalisation of an absolute path (no query):
//  - percent-encodings of unreserved characters are decoded ("%41" -> "A", "%2e" -> "."),
//    the others keep their encoding with uppercase hex digits ("%3a" -> "%3A");
//  - dot segments are removed (RFC 3986 5.2.4: "/a/./b/../c" -> "/a/c", never above "/");
//  - runs of "/" become one ("//x" -> "/x"), as most upstream servers read them;
//  - 400 for an encoded "/" (%2F), an encoded NUL (%00), or a "%" not followed by two
//    hex digits (RFC 3986 2.1).
// A path that does not start with "/" (e.g. "*") is returned unchanged: no route
// matches it.
http::Checked<std::string> normalize_path(std::string_view path);

// True when normalize_path leaves `path` as it is: it does not start with "/", or it
// has no "%", no "//" and no "/." (one pass; most requests' paths).
bool path_is_normal(std::string_view path);

// The request's origin-form target ("/p?q") with its path normalised and the rest
// (from the first "?" or "#") unchanged.
http::Checked<std::string> normalize_target(std::string_view target);
// True when normalize_target leaves `target` as it is.
bool target_is_normal(std::string_view target);

}  // namespace wsgate::gateway
