// The thread's OpenSSL error queue, emptied before an SSL_read, SSL_write or SSL_shutdown
// whose result SSL_get_error(3) reads (the queue must be empty for that). Only when it
// holds something: ERR_clear_error() walks every slot of the queue and frees each one's
// data, about 2,000 instructions even when the queue is empty (OpenSSL 3.0); a wss://
// relay called it for every record both ways (issue 13).
#pragma once

#include <openssl/err.h>

namespace wsgate::tls {

inline void clear_openssl_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace wsgate::tls
