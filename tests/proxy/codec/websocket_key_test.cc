#include "proxy/codec/websocket_key.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <string_view>

using wsgate::ws::compute_accept;
using wsgate::ws::generate_key;
using wsgate::ws::is_valid_key;

TEST_CASE("compute_accept: RFC 6455 1.3 example") {
  CHECK(compute_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("compute_accept: other known vectors") {
  CHECK(compute_accept("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  // base64(SHA-1(GUID)): the key is hashed as given, even when empty.
  CHECK(compute_accept("") == "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
  // The key is used byte for byte: no trimming, no case folding.
  CHECK(compute_accept("dGhlIHNhbXBsZSBub25jZQ== ") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(compute_accept("DGhlIHNhbXBsZSBub25jZQ==") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("is_valid_key: base64 of exactly 16 bytes") {
  CHECK(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(is_valid_key("x3JJHMbDL1EzLkh9GBhXDw=="));
  CHECK(is_valid_key("AAAAAAAAAAAAAAAAAAAAAA=="));  // 16 zero bytes
  CHECK(is_valid_key("/////////////////////w=="));  // 16 0xff bytes
  CHECK(is_valid_key("+/+/+/+/+/+/+/+/+/+/+g=="));
  // The last data character carries 2 bits: only A, Q, g, w are canonical there.
  for (char c : std::string_view("AQgw")) {
    std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    key[21] = c;
    CAPTURE(key);
    CHECK(is_valid_key(key));
  }
}

TEST_CASE("is_valid_key: rejects everything else") {
  const char* bad[] = {
      "",
      "dGhlIHNhbXBsZSBub25jZQ=",     // 23 chars, one '='
      "dGhlIHNhbXBsZSBub25jZQ",      // no padding at all
      "dGhlIHNhbXBsZSBub25jZQ===",   // 25 chars
      "AAECAwQFBgcICQoLDA0O",        // 15 bytes
      "AAECAwQFBgcICQoLDA0O====",    // 15 bytes, padded to 24
      "AAECAwQFBgcICQoLDA0ODxA=",    // 17 bytes
      "AAECAwQFBgcICQoLDA0ODxAR",    // 18 bytes
      "dGhlIHNhbXBsZSBub25jZR==",    // non-canonical: low bits set in the last char
      "dGhlIHNhbXBsZSBub25jZf==",    // non-canonical
      "dGhlIHNhbXBsZSBub25jZ/==",    // non-canonical
      "dGhlIHNhbXBsZSBub25jZ===",    // '=' as the 22nd char
      "dGhlIHNhbXBs=SBub25jZQ==",    // '=' in the middle
      "dGhlIHNhbXBsZSBub25jZQ-=",    // bad padding char
      "dGhlIHNhbXBsZSBub25j-Q==",    // base64url '-'
      "dGhlIHNhbXBsZSBub25j_Q==",    // base64url '_'
      "dGhlIHNhbXBsZSBub25j.Q==",    // '.'
      "dGhlIHNhbXBsZSBub25j Q==",    // space inside
      " dGhlIHNhbXBsZSBub25jZQ=",    // leading space
      "dGhlIHNhbXBsZSBub25jZQ= ",    // trailing space instead of '='
      "dGhlIHNhbXBsZSBub25jZQ\r\n",  // CRLF instead of padding
      "========================",
  };
  for (std::string_view key : bad) {
    CAPTURE(key);
    CHECK_FALSE(is_valid_key(key));
  }
  using namespace std::literals;
  CHECK_FALSE(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=\0"sv));
  CHECK_FALSE(is_valid_key("dGhlIHNhbXBsZSBub25jZQ==\0"sv));  // 25 bytes with a NUL
  CHECK_FALSE(is_valid_key("dGhlIHNhbX\0sZSBub25jZQ=="sv));
  CHECK_FALSE(is_valid_key("dGhlIHNhbXBsZSBub25j\xc3\xa9=="));
}

TEST_CASE("generate_key: valid, distinct keys with a matching accept") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = generate_key();
    CAPTURE(key);
    REQUIRE(key.size() == 24);
    CHECK(is_valid_key(key));
    seen.insert(key);
    const std::string accept = compute_accept(key);
    CHECK(accept.size() == 28);
    CHECK(accept.back() == '=');
  }
  CHECK(seen.size() == 1000);
}
