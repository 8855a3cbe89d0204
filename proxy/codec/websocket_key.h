// Sec-WebSocket-Key / Sec-WebSocket-Accept (RFC 6455 4.2.1 item 5, 4.2.2 item 5.4).
#pragma once

#include <string>
#include <string_view>

namespace wsgate::ws {

// True when `key` is base64 that decodes to exactly 16 bytes (RFC 6455 4.2.1 item 5).
bool is_valid_key(std::string_view key);

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) (RFC 6455 4.2.2).
std::string compute_accept(std::string_view key);

// A fresh random 16-byte key, base64-encoded (RFC 6455 4.1 item 7), for upstreams.
std::string generate_key();

}  // namespace wsgate::ws
