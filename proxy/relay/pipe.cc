#include "proxy/relay/pipe.h"

#include <algorithm>

namespace wsgate::proxy {

Pipe::Pipe(Endpoint& source, Endpoint& sink, std::size_t high_watermark)
    : source_(source), sink_(sink), high_watermark_(high_watermark) {}

void Pipe::move(std::size_t n) {
  if (n == 0) return;
  evbuffer* out = sink_.output();
  const bool sink_was_empty = evbuffer_get_length(out) == 0;
  // Moves whole chains by pointer; only a partial last chain is copied.
  evbuffer_remove_buffer(input(), out, n);
  sink_bytes_queued_ += n;
  if (sink_was_empty) sink_.flush();
  if (sink_buffered() > high_watermark_) pause(PauseReason::SinkFull);
}

void Pipe::write(const void* data, std::size_t n) {
  evbuffer* out = sink_.output();
  const bool sink_was_empty = evbuffer_get_length(out) == 0;
  evbuffer_add(out, data, n);
  sink_bytes_queued_ += n;
  if (sink_was_empty) sink_.flush();
}

bool Pipe::start_splice(event_base* base, uint64_t n, SplicePump::Events events) {
  if (splice_ || no_splice_ || paused_ != 0 || n == 0 || input_length() != 0 ||
      sink_.output_length() != 0)
    return false;
  const evutil_socket_t from = source_.splice_fd();
  const evutil_socket_t to = sink_.splice_fd();
  if (from < 0 || to < 0) return false;
  // The pipe is the route's buffer_size, the bound the buffers have (rounded up by the
  // kernel to a power of two pages).
  const int pipe_bytes =
      static_cast<int>(std::min<std::size_t>(high_watermark_, SplicePump::kPipeBytes));
  splice_ = SplicePump::create(base, from, to, n, std::move(events), pipe_bytes);
  if (!splice_) return false;  // no descriptors for a pipe: the buffers it is
  pause(PauseReason::Spliced);
  splice_->start_when_ready();
  return true;
}

void Pipe::stop_source() {
  if (splice_) splice_->stop_reading();
  pause(PauseReason::SourceDone);
}

std::size_t Pipe::end_splice(bool for_good) {
  if (for_good) no_splice_ = true;
  if (!splice_) return 0;
  const std::size_t lost = splice_->in_pipe();
  splice_.reset();
  resume(PauseReason::Spliced);
  return lost;
}

bool Pipe::on_sink_drained() {
  // STYLE.md 5: low watermark ~ high / 2.
  if (!reading_paused() || sink_buffered() > high_watermark_ / 2) return false;
  resume(PauseReason::SinkFull);
  return paused_ == 0 && input_length() > 0;
}

std::size_t Pipe::read_room() const {
  const std::size_t pending = input_length() + sink_buffered();
  return pending >= high_watermark_ ? 0 : high_watermark_ - pending;
}

uint64_t Pipe::sink_bytes_delivered() const {
  const uint64_t held = sink_.unsent_bytes();
  return sink_bytes_queued_ > held ? sink_bytes_queued_ - held : 0;
}

void Pipe::pause(PauseReason r) {
  paused_ |= bit(r);
  apply_read_state();
}

void Pipe::resume(PauseReason r) {
  paused_ &= static_cast<uint8_t>(~bit(r));
  apply_read_state();
}

void Pipe::apply_read_state() {
  source_.set_reading(paused_ == 0);
}

}  // namespace wsgate::proxy
