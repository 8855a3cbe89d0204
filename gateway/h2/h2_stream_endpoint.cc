#include "gateway/h2/h2_stream_endpoint.h"

#include <event2/event.h>

#include <utility>

#include "gateway/h2/h2_stream.h"

namespace wsgate::gateway {

H2StreamEndpoint::H2StreamEndpoint(event_base* base, H2Stream& stream)
    : stream_(&stream),
      in_(evbuffer_new()),
      out_(evbuffer_new()),
      dispatch_(event_new(base, -1, 0, &H2StreamEndpoint::on_dispatch, this)) {
  // What leaves input() is what the relay took (it only removes or drains): that is
  // when the client gets its credit back.
  evbuffer_add_cb(in_.get(), &H2StreamEndpoint::on_input_taken, this);
}

H2StreamEndpoint::~H2StreamEndpoint() {
  if (stream_ != nullptr) stream_->endpoint_gone(out_.get());
}

void H2StreamEndpoint::on_input_taken(evbuffer* /*buf*/, const evbuffer_cb_info* info, void* self) {
  auto* e = static_cast<H2StreamEndpoint*>(self);
  if (info->n_deleted > 0 && e->stream_ != nullptr) e->stream_->credit_taken(info->n_deleted);
}

void H2StreamEndpoint::peer_data(const uint8_t* data, std::size_t len) {
  evbuffer_add(in_.get(), data, len);
  if (reading_) schedule(Readable);
}

void H2StreamEndpoint::peer_data(evbuffer* kept) {
  evbuffer_add_buffer(in_.get(), kept);
  if (reading_) schedule(Readable);
}

void H2StreamEndpoint::peer_end() {
  if (eof_) return;
  eof_ = true;  // every byte before END_STREAM is in input() already
  schedule(Eof);
}

void H2StreamEndpoint::peer_failed() {
  if (failed_) return;
  failed_ = true;
  schedule(Error);
}

void H2StreamEndpoint::moved_out() {
  if (evbuffer_get_length(out_.get()) <= low_watermark_) schedule(Drained);
}

void H2StreamEndpoint::attach(proxy::EndpointEvents& events, std::size_t low_watermark) {
  events_ = &events;
  low_watermark_ = low_watermark;
  // An END_STREAM or a reset that came before the relay started is reported now.
  if (eof_) schedule(Eof);
  if (failed_) schedule(Error);
}

void H2StreamEndpoint::detach() {
  events_ = nullptr;
  reading_ = false;
  pending_ = 0;
  event_del(dispatch_.get());
}

void H2StreamEndpoint::set_reading(bool on) {
  reading_ = on;
}

void H2StreamEndpoint::flush() {
  if (stream_ != nullptr) stream_->output_ready();
}

void H2StreamEndpoint::shutdown_write() {
  write_shut_ = true;
  if (stream_ != nullptr) stream_->output_ready();
}

void H2StreamEndpoint::reset() {
  if (stream_ != nullptr) stream_->reset_output(/*abandon=*/false);
}

void H2StreamEndpoint::abandon() {
  if (stream_ != nullptr) stream_->reset_output(/*abandon=*/true);
}

void H2StreamEndpoint::finish() {
  shutdown_write();
}

std::size_t H2StreamEndpoint::unsent_bytes() const {
  return evbuffer_get_length(out_.get());
}

void H2StreamEndpoint::schedule(Pending p) {
  pending_ |= p;
  if (events_ != nullptr) event_active(dispatch_.get(), EV_TIMEOUT, 0);
}

void H2StreamEndpoint::on_dispatch(evutil_socket_t /*fd*/, short /*what*/, void* self) {
  auto* e = static_cast<H2StreamEndpoint*>(self);
  const uint8_t pending = std::exchange(e->pending_, uint8_t{0});
  // Each call may detach the relay from this endpoint: check before the next.
  if ((pending & Readable) != 0 && e->events_ != nullptr && e->reading_)
    e->events_->on_readable(*e);
  if ((pending & Drained) != 0 && e->events_ != nullptr) e->events_->on_drained(*e);
  if ((pending & Eof) != 0 && e->events_ != nullptr) e->events_->on_eof(*e);
  if ((pending & Error) != 0 && e->events_ != nullptr) e->events_->on_error(*e);
}

}  // namespace wsgate::gateway
