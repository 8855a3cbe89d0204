#include "proxy/relay/tunnel_relay.h"

#include <algorithm>

namespace wsgate::proxy {
namespace {

// A read that finds this much waiting marks the direction as bulk (a download, an
// upload): its bytes are spliced from then on. Interactive traffic (a shell, a chat)
// never fills a read this size and keeps the buffers, and its pipes' descriptors.
constexpr std::size_t kBulkRead = 64 * 1024;
// "Until the source's EOF": more than any tunnel carries.
constexpr uint64_t kToTheEnd = uint64_t{1} << 62;

}  // namespace

TunnelRelay::TunnelRelay(RelayCore& core)
    : core_(core), close_timer_(core.base, [this] { finish(); }) {}

void TunnelRelay::start() {
  // Bytes that arrived with the request (a TLS ClientHello right behind the CONNECT).
  pump(core_.to_client);
  pump(core_.to_upstream);
}

void TunnelRelay::pump(Pipe& pipe) {
  bool failed = false;
  // Larger reads than the transport's own, bounded by the room under the watermark.
  if (!pipe.source_stopped()) failed = !pipe.source().read_more(pipe.read_room());
  const std::size_t available = pipe.input_length();
  // (A route with a small buffer_size reads less at a time: half of it is bulk there.)
  if (available >= std::min(kBulkRead, pipe.high_watermark() / 2))
    (core_.from_client(pipe) ? bulk_to_upstream_ : bulk_to_client_) = true;
  if (pipe.source_stopped()) {
    pipe.discard(available);
  } else if (available > 0) {
    (core_.from_client(pipe) ? core_.stats.client_to_upstream : core_.stats.upstream_to_client)
        .count_raw(available);
    pipe.move(available);
  }
  // A read error is reported once by the kernel: the bytes read before it have moved,
  // now the side has failed.
  if (failed) on_side_ended(core_.from_client(pipe), true);
}

uint64_t TunnelRelay::opaque_ahead(const Pipe& pipe) const {
  const bool bulk = core_.from_client(pipe) ? bulk_to_upstream_ : bulk_to_client_;
  return bulk && !pipe.source_stopped() && pipe.input_length() == 0 ? kToTheEnd : 0;
}

void TunnelRelay::passed_opaque(Pipe& pipe, uint64_t n, bool delivered) {
  if (delivered)
    (core_.from_client(pipe) ? core_.stats.client_to_upstream : core_.stats.upstream_to_client)
        .count_raw(n);
}

void TunnelRelay::record(metrics::Side by, TunnelEnd what, std::string_view reason, bool full) {
  if (!first_) {
    first_ = what;
    core_.stats.closed_by = by;
    core_.stats.close_reason.assign(reason);
  }
  core_.stats.tunnel_end = end();
  if (full && !full_close_) {
    full_close_ = true;
    core_.to_upstream.stop_source();
    core_.to_client.stop_source();
    close_timer_.arm_ms(core_.close_timeout.count());
  }
}

std::optional<TunnelEnd> TunnelRelay::end() const {
  if (!first_) return std::nullopt;
  if (client_.eof && upstream_.eof && !client_.gone && !upstream_.gone &&
      (*first_ == TunnelEnd::ClientClosed || *first_ == TunnelEnd::UpstreamClosed))
    return TunnelEnd::BothClosed;
  return first_;
}

void TunnelRelay::on_side_ended(bool client_side, bool error) {
  Side& side = client_side ? client_ : upstream_;
  if (side.eof) {
    if (error) side.gone = true;
    return;
  }
  side.eof = true;
  Pipe& from = client_side ? core_.to_upstream : core_.to_client;
  pump(from);  // whatever arrived with the EOF
  from.stop_source();
  const metrics::Side by = client_side ? metrics::Side::Client : metrics::Side::Upstream;
  if (error) {
    side.gone = true;
    // A failure is passed on as one: the other side is reset, not closed cleanly.
    (client_side ? *core_.upstream : *core_.client).reset();
    record(by, client_side ? TunnelEnd::ClientReset : TunnelEnd::UpstreamReset,
           client_side ? "client connection failed" : "upstream connection failed", true);
    return;
  }
  // The other side hears the EOF as a half-close if it can (maybe_finish).
  record(by, client_side ? TunnelEnd::ClientClosed : TunnelEnd::UpstreamClosed, {},
         !from.sink().can_half_close());
}

void TunnelRelay::close(uint16_t /*code*/, std::string_view reason) {
  record(metrics::Side::Gateway, TunnelEnd::GatewayClosed, reason, true);
}

void TunnelRelay::on_idle_timeout() {
  record(metrics::Side::Gateway, TunnelEnd::IdleTimeout, "idle timeout", true);
}

void TunnelRelay::maybe_finish() {
  if (core_.finished) return;
  const bool to_client_flushed = client_.gone || core_.to_client.sink_buffered() == 0;
  const bool to_upstream_flushed = upstream_.gone || core_.to_upstream.sink_buffered() == 0;
  if (full_close_) {
    if (to_client_flushed && to_upstream_flushed) finish();
    return;
  }
  // Pass an EOF on once everything before it has been written.
  if (client_.eof && !upstream_.shut && to_upstream_flushed) {
    upstream_.shut = true;
    core_.upstream->shutdown_write();
  }
  if (upstream_.eof && !client_.shut && to_client_flushed) {
    client_.shut = true;
    core_.client->shutdown_write();
  }
  if (client_.eof && upstream_.eof && to_client_flushed && to_upstream_flushed) finish();
}

void TunnelRelay::finish() {
  if (core_.finished) return;
  close_timer_.cancel();
  core_.stats.tunnel_end = end();
  core_.finish(!client_.gone, !upstream_.gone);
}

}  // namespace wsgate::proxy
