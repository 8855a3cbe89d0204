// Session-ticket keys (RFC 5077 4 / RFC 8446 4.6.1), one key ring per resumption scope.
//
// A scope is what a session may be resumed in: one listener with one set of client
// certificate settings (ServerContext computes it; it is also the SSL_CTX session id
// context). Each scope's keys are random, made when a rotation period first needs them
// and forgotten two periods later (forward secrecy: an old ticket cannot be opened once
// its key is gone, and nothing derives it again). Every worker and every SSL_CTX of one
// scope shares the ring (it is looked up by scope), so a ticket issued by one worker
// resumes on another, and a reload that keeps the scope keeps the keys; a reload that
// changes the client certificate settings gets a new scope and new keys.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <memory>

namespace wsgate::tls {

// New tickets are sealed with the current period's key; tickets from the previous period
// are still accepted (and renewed). A ticket therefore lives at most two periods.
inline constexpr long kTicketRotationSeconds = 3600;

using ResumptionScope = std::array<unsigned char, 32>;  // SHA-256, <= SSL_MAX_SID_CTX_LENGTH

class TicketKeyRing;

// The ring of `scope`: the one already in use by a live context, else a new empty one.
// Thread-safe.
std::shared_ptr<TicketKeyRing> ticket_key_ring(const ResumptionScope& scope);

// Installs the ticket key callback on `ctx`, using `ring` (which must outlive `ctx`).
void enable_rotating_tickets(SSL_CTX* ctx, TicketKeyRing* ring);

}  // namespace wsgate::tls
