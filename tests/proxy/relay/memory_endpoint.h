// An Endpoint in memory, for relay tests without sockets: the test plays the peer
// (peer_send, peer_receive, peer_end, peer_reset) and looks at what the relay asked of
// the endpoint. It behaves like an HTTP/2 stream would: peer_send() appends to input()
// even while the relay is not reading (it only signals on_readable() while reading is
// on), and it counts the bytes the relay took out of input() through an evbuffer
// callback, the way a stream returns flow-control credit only for those.
#pragma once

#include <event2/buffer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/endpoint.h"

namespace wsgate::test {

class MemoryEndpoint final : public proxy::Endpoint {
 public:
  MemoryEndpoint() { evbuffer_add_cb(in_.get(), &on_input_changed, this); }

  // --- the peer (the test), acting "from the event loop" ---
  void peer_send(std::string_view bytes) {
    evbuffer_add(in_.get(), bytes.data(), bytes.size());
    if (reading_ && events_ != nullptr) events_->on_readable(*this);
  }
  // Takes up to `max` bytes the relay wrote (only what was flushed counts as sent).
  std::string peer_receive(std::size_t max = SIZE_MAX) {
    std::string out(std::min(max, evbuffer_get_length(out_.get())), '\0');
    evbuffer_remove(out_.get(), out.data(), out.size());
    if (events_ != nullptr && evbuffer_get_length(out_.get()) <= low_watermark_)
      events_->on_drained(*this);
    return out;
  }
  void peer_end() {
    if (events_ != nullptr) events_->on_eof(*this);
  }
  void peer_reset() {
    if (events_ != nullptr) events_->on_error(*this);
  }

  // --- what the relay did ---
  bool reading() const { return reading_; }
  uint64_t taken() const { return taken_; }  // bytes the relay took out of input()
  std::size_t waiting() const { return evbuffer_get_length(in_.get()); }
  bool attached() const { return events_ != nullptr; }
  bool write_shut() const { return write_shut_; }
  bool was_reset() const { return reset_; }
  bool abandoned() const { return abandoned_; }
  bool finished_cleanly() const { return finished_; }
  int flushes() const { return flushes_; }
  bool half_closable = true;

  // --- proxy::Endpoint ---
  void attach(proxy::EndpointEvents& events, std::size_t low_watermark) override {
    events_ = &events;
    low_watermark_ = low_watermark;
  }
  void detach() override {
    events_ = nullptr;
    reading_ = false;
  }
  evbuffer* input() override { return in_.get(); }
  evbuffer* output() override { return out_.get(); }
  void set_reading(bool on) override { reading_ = on; }
  void flush() override { ++flushes_; }
  bool can_half_close() const override { return half_closable; }
  void shutdown_write() override { write_shut_ = true; }
  void reset() override { reset_ = true; }
  void abandon() override { abandoned_ = true; }
  void finish() override { finished_ = true; }
  std::size_t unsent_bytes() const override { return evbuffer_get_length(out_.get()); }

 private:
  static void on_input_changed(evbuffer* /*buf*/, const evbuffer_cb_info* info, void* self) {
    static_cast<MemoryEndpoint*>(self)->taken_ += info->n_deleted;
  }

  EvbufferPtr in_{evbuffer_new()};
  EvbufferPtr out_{evbuffer_new()};
  proxy::EndpointEvents* events_ = nullptr;
  std::size_t low_watermark_ = 0;
  bool reading_ = false;
  uint64_t taken_ = 0;
  bool write_shut_ = false;
  bool reset_ = false;
  bool abandoned_ = false;
  bool finished_ = false;
  int flushes_ = 0;
};

}  // namespace wsgate::test
