// Session-ticket keys that rotate without shared mutable state: every key is derived
// from one random process secret and the current rotation period, so every worker and
// every SSL_CTX computes the same keys on its own, and a certificate reload keeps them.
#pragma once

#include <openssl/ssl.h>

namespace wsgate::tls {

// New tickets are sealed with the current period's key; tickets from the previous period
// are still accepted (and renewed). A ticket therefore lives at most two periods.
inline constexpr long kTicketRotationSeconds = 3600;

// Installs the ticket key callback on `ctx` (RFC 5077 4 / RFC 8446 4.6.1 tickets).
void enable_rotating_tickets(SSL_CTX* ctx);

}  // namespace wsgate::tls
